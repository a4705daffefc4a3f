import { EtcdDriver } from "./etcd.js";
import { TinyKvClientDriver } from "./tinykv-client.js";
import { TinyKvRawDriver } from "./tinykv-raw.js";
import type { Driver, DriverOptions } from "./types.js";

export type Target = "tinykv" | "etcd";
/** tinykv implementation: "client" = the client library (default), "raw" = bench's own raw-rpc driver. */
export type TinyKvDriverKind = "client" | "raw";

/** The one place that picks the implementation of each target. */
export async function createDriver(
  target: Target,
  opts: DriverOptions,
  tinykv: TinyKvDriverKind = "client",
): Promise<Driver> {
  if (target === "etcd") return new EtcdDriver(opts);
  return tinykv === "raw" ? TinyKvRawDriver.connect(opts) : TinyKvClientDriver.connect(opts);
}
