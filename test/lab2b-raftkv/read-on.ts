/**
 * A raw read of region 1 on one store's peer, as a client that picked that store would send it:
 * its value, "<none>" when absent, undefined when the store refuses it (not leader, no leader,
 * timed out; the client would go elsewhere).
 */
import { CF_DEFAULT } from "../../src/kv/engine/index.js";
import { RaftStorage, rawKeyspace } from "../../src/kv/storage/index.js";
import type { Context } from "../../src/proto/kvrpcpb.js";
import type { TestCluster } from "../harness/cluster.js";

export async function readOn(
  c: TestCluster,
  storeId: bigint,
  key: string,
  flags: Pick<Context, "replicaRead"> = {},
): Promise<string | undefined> {
  const store = c.store(storeId)!;
  const region = store.peers.get(1n)!.region;
  const ctx: Context = { regionId: 1n, regionEpoch: region.regionEpoch, peer: store.peerMeta(1n), term: 0n, ...flags };
  try {
    const reader = await rawKeyspace(new RaftStorage(store)).reader(ctx);
    try {
      return (await reader.getCF(CF_DEFAULT, Buffer.from(key)))?.toString() ?? "<none>";
    } finally {
      await reader.close();
    }
  } catch {
    // Refused: what the test looks at is whether this store served the read, not why it did not.
    return undefined;
  }
}
