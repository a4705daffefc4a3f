import { describe, expect, it } from "vitest";
import { GetRequest, RawPutRequest } from "../../src/proto/kvrpcpb.js";
import { Message, MessageType } from "../../src/proto/eraftpb.js";
import { Error as RegionErrorPb } from "../../src/proto/errorpb.js";

// Golden encodings computed by hand from the field numbers of TinyKV's protos.
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe("wire compatibility with TinyKV's protobuf encoding", () => {
  it("RawPutRequest with a full Context", () => {
    const msg = RawPutRequest.fromPartial({
      context: { regionId: 1n, regionEpoch: { confVer: 1n, version: 2n }, peer: { id: 3n, storeId: 4n }, term: 5n },
      key: Buffer.from("k"),
      value: Buffer.from("v"),
      cf: "default",
    });
    // context (1, len 16): region_id=1 | region_epoch{conf_ver=1, version=2} | peer{id=3, store_id=4} | term(5)=5
    const context = "0801" + "1204" + "08011002" + "1a04" + "08031004" + "2805";
    const golden = "0a10" + context + "12016b" + "1a0176" + "2207" + Buffer.from("default").toString("hex");
    expect(hex(RawPutRequest.encode(msg).finish())).toBe(golden);
    expect(RawPutRequest.decode(Buffer.from(golden, "hex"))).toEqual(msg);
  });

  it("a uint64 above 2^53 survives exactly (timestamps are ~2^58)", () => {
    const msg = GetRequest.fromPartial({ key: Buffer.from("a"), version: (1n << 63n) + 1n });
    const golden = "120161" + "18" + "81808080808080808001";
    expect(hex(GetRequest.encode(msg).finish())).toBe(golden);
    expect(GetRequest.decode(Buffer.from(golden, "hex")).version).toBe((1n << 63n) + 1n);
  });

  it("eraftpb.Message MsgAppend with one entry", () => {
    const msg = Message.fromPartial({
      msgType: MessageType.MsgAppend,
      to: 2n,
      from: 1n,
      term: 3n,
      logTerm: 3n,
      index: 6n,
      entries: [{ term: 3n, index: 7n, data: Buffer.from("x") }],
      commit: 6n,
    });
    const entry = "1003" + "1807" + "220178"; // entry_type 0 is not encoded
    const golden = "0803" + "1002" + "1801" + "2003" + "2803" + "3006" + "3a07" + entry + "4006";
    expect(hex(Message.encode(msg).finish())).toBe(golden);
    expect(Message.decode(Buffer.from(golden, "hex"))).toEqual(msg);
  });

  it("errorpb.Error skips the unused field 6 and encodes stale_command as field 7", () => {
    const msg = RegionErrorPb.fromPartial({ message: "m", staleCommand: {} });
    expect(hex(RegionErrorPb.encode(msg).finish())).toBe("0a016d" + "3a00");
  });
});
