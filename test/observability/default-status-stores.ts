/**
 * Stores whose status address is the default, their gRPC port + 20: the only place the scheduler's
 * dashboard and `tinykv-ctl metrics <store-id>` look for a store's /metrics.
 */
import { createServer } from "node:net";
import { join } from "node:path";
import { freePort } from "../harness/ports.js";
import type { ProcessCluster } from "../harness/processes.js";

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/** A loopback gRPC port whose port + 20 is free as well. */
export async function grpcPortWithFreeStatusPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await freePort();
    if (port + 20 <= 65535 && (await portIsFree(port + 20))) return port;
  }
  throw new Error("found no free loopback port whose +20 is free as well");
}

/** Starts store `n` of `cluster` with its status address at its gRPC port + 20. */
export async function addStoreWithDefaultStatus(cluster: ProcessCluster, n: number): Promise<void> {
  const port = await grpcPortWithFreeStatusPort();
  cluster.stores.set(n, {
    addr: `127.0.0.1:${port}`,
    path: join(cluster.dir.path, `store${n}`),
    statusAddr: `127.0.0.1:${port + 20}`,
  });
  cluster.startStore(n);
}
