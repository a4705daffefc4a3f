import { EtcdDriver } from "./etcd.js";
import { TinyKvRawDriver } from "./tinykv-raw.js";
import type { Driver, DriverOptions } from "./types.js";

export type Target = "tinykv" | "etcd";

/** The one place that picks the implementation of each target. */
export async function createDriver(target: Target, opts: DriverOptions): Promise<Driver> {
  if (target === "etcd") return new EtcdDriver(opts);
  return TinyKvRawDriver.connect(opts);
}
