import { StoreNotFoundError } from "./errors.js";
import type { StoreResolver } from "./transport.js";

/** A fixed store-id → address map (tests, static clusters); `set`/`delete` change it at runtime. */
export class StaticResolver implements StoreResolver {
  private readonly addrs = new Map<bigint, string>();

  constructor(entries: Iterable<readonly [bigint, string]> = []) {
    for (const [id, addr] of entries) this.addrs.set(id, addr);
  }

  set(storeId: bigint, addr: string): void {
    this.addrs.set(storeId, addr);
  }

  delete(storeId: bigint): void {
    this.addrs.delete(storeId);
  }

  async resolve(storeId: bigint): Promise<string> {
    const addr = this.addrs.get(storeId);
    if (addr === undefined) throw new StoreNotFoundError(storeId, "not in the static resolver");
    return addr;
  }
}
