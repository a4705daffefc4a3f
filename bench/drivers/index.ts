import { EtcdDriver } from "./etcd.js";
import { TinyKvClientDriver } from "./tinykv-client.js";
import { TinyKvRawDriver } from "./tinykv-raw.js";
import type { Driver, DriverOptions } from "./types.js";

export type Target = "tinykv" | "etcd";
/**
 * tinykv implementation: "client" = the client library (default; one BatchCommands stream per
 * store), "client-unary" = the client library on unary rpcs only, "raw" = bench's own raw-rpc driver.
 */
export const TINYKV_DRIVER_KINDS = ["client", "client-unary", "raw"] as const;
export type TinyKvDriverKind = (typeof TINYKV_DRIVER_KINDS)[number];

/** The one place that picks the implementation of each target. */
export async function createDriver(
  target: Target,
  opts: DriverOptions,
  tinykv: TinyKvDriverKind = "client",
): Promise<Driver> {
  if (target === "etcd") return new EtcdDriver(opts);
  if (tinykv === "raw") return TinyKvRawDriver.connect(opts);
  return TinyKvClientDriver.connect(opts, { batchCommands: tinykv === "client" });
}
