import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StandaloneNode } from "../../src/cli/standalone-node.js";
import { startStandaloneServer } from "../../src/cli/standalone-node.js";
import { silentLogger } from "../../src/util/logger.js";
import { tempDir } from "../harness/wait.js";
import type { GeneratedTinyKv } from "../harness/generated-client.js";
import { generatedTinyKvClient } from "../harness/generated-client.js";

/**
 * A client built by a different protobuf implementation (protobufjs via proto-loader, as a
 * user of another language would build one from the .proto files) talks to our server.
 */
describe("a client generated at run time from the .proto files", () => {
  let dir: ReturnType<typeof tempDir>;
  let node: StandaloneNode;
  let client: GeneratedTinyKv;
  const callRpc = (method: string, req: object) => client.call(method, req);

  beforeAll(async () => {
    dir = tempDir();
    node = await startStandaloneServer({ path: dir.path, addr: "127.0.0.1:0", log: silentLogger });
    client = generatedTinyKvClient(`127.0.0.1:${node.port}`);
  });
  afterAll(async () => {
    client.close();
    await node.stop();
    dir.cleanup();
  });

  it("RawPut, RawGet and RawScan work unchanged", async () => {
    const ctx = { region_id: "1", region_epoch: { conf_ver: "1", version: "1" }, peer: { id: "1", store_id: "1" } };
    await callRpc("RawPut", { context: ctx, key: Buffer.from("interop-a"), value: Buffer.from("1"), cf: "default" });
    await callRpc("RawPut", { context: ctx, key: Buffer.from("interop-b"), value: Buffer.from("2"), cf: "default" });
    const got = await callRpc("RawGet", { context: ctx, key: Buffer.from("interop-a"), cf: "default" });
    expect(got.not_found).toBe(false);
    expect(Buffer.from(got.value).toString()).toBe("1");
    const scanned = await callRpc("RawScan", {
      context: ctx,
      start_key: Buffer.from("interop-"),
      limit: 10,
      cf: "default",
    });
    expect(scanned.kvs.map((kv: any) => Buffer.from(kv.key).toString())).toEqual(["interop-a", "interop-b"]);
  });
});
