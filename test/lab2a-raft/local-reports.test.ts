// Unreachable and snapshot-status reports are local inputs: the application steps them through
// RawNode's report methods; a peer on the network cannot send them.
import { describe, expect, it } from "vitest";
import {
  ErrStepLocalMsg,
  MemoryStorage,
  MessageType,
  InspectableRawNode as RawNode,
  newMessage,
} from "../../src/raft/testing.js";

describe("local reports", () => {
  it("RawNode.step refuses MsgUnreachable and MsgSnapshotStatus from the network", () => {
    const rn = new RawNode({
      id: 1n,
      peers: [1n, 2n],
      electionTick: 10,
      heartbeatTick: 1,
      storage: new MemoryStorage(),
    });
    for (const msgType of [MessageType.MsgUnreachable, MessageType.MsgSnapshotStatus]) {
      expect(() => rn.step(newMessage({ msgType, from: 2n, to: 1n, term: 1n }))).toThrow(ErrStepLocalMsg);
    }
  });
});
