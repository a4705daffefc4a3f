import type { Engine } from "../../../src/kv/engine/index.js";
import type { MetaKV } from "../../../src/scheduler/core/meta-kv.js";

/**
 * The scheduler's metadata on a store engine's raw key space (meta keys, utf8): what the
 * deterministic simulation uses to keep the real scheduler on a simulated disk.
 */
export class EngineMetaKV implements MetaKV {
  constructor(private readonly engine: Engine) {}

  get(key: string): Promise<Buffer | undefined> {
    return this.engine.getMeta(Buffer.from(key, "utf8"));
  }

  async write(puts: ReadonlyArray<readonly [string, Buffer]>, dels: readonly string[], sync: boolean): Promise<void> {
    const batch = this.engine.newBatch();
    for (const [k, v] of puts) batch.putMeta(Buffer.from(k, "utf8"), Buffer.from(v));
    for (const k of dels) batch.deleteMeta(Buffer.from(k, "utf8"));
    await batch.write(sync);
  }

  async scanPrefix(prefix: string): Promise<Array<[string, Buffer]>> {
    const gte = Buffer.from(prefix, "utf8");
    const snap = this.engine.snapshot();
    const out: Array<[string, Buffer]> = [];
    try {
      for await (const { key, value } of snap.rawRange(gte, Buffer.concat([gte, Buffer.from([0xff])])))
        out.push([key.toString("utf8"), value]);
    } finally {
      await snap.close();
    }
    return out;
  }

  close(): Promise<void> {
    return this.engine.close();
  }
}
