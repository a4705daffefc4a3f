/**
 * The address a process tells others to dial, which may differ from the one it listens on
 * (listen on 0.0.0.0, advertise the machine's routable address), as TiKV's --advertise-addr.
 */

/** The advertise address is one no other machine can dial. */
export class AdvertiseAddrError extends Error {
  constructor(
    readonly flag: string,
    readonly addr: string,
    reason: string,
  ) {
    super(`${flag} ${JSON.stringify(addr)}: ${reason}`);
    this.name = "AdvertiseAddrError";
  }
}

const UNROUTABLE_HOSTS = new Set(["", "0.0.0.0", "::", "[::]", "0:0:0:0:0:0:0:0"]);

/**
 * `advertise` when given, else `listen` (today's behaviour). Refuses a wildcard or empty host and
 * a port that is not 1..65535, because peers and clients would be told to dial nowhere.
 * `listenFlag` names the flag the default came from, so the error says which one to change.
 */
export function resolveAdvertiseAddr(
  flag: string,
  advertise: string | undefined,
  listen: string,
  listenFlag: string,
): string {
  const addr = advertise ?? listen;
  const from = advertise === undefined ? `${flag} is not set, so ${listenFlag} is advertised; ` : "";
  const i = addr.lastIndexOf(":");
  const host = i < 0 ? "" : addr.slice(0, i);
  const port = Number(i < 0 ? "" : addr.slice(i + 1));
  if (UNROUTABLE_HOSTS.has(host.toLowerCase())) {
    throw new AdvertiseAddrError(
      advertise === undefined ? listenFlag : flag,
      addr,
      `${from}other machines cannot dial ${host ? `the wildcard host ${host}` : "an empty host"}; pass ${flag} <routable-host:port>`,
    );
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    // Port 0 means "pick one" to the listener; the advertised port must be the real one.
    if (advertise === undefined && port === 0) return addr;
    throw new AdvertiseAddrError(flag, addr, `${from}want host:port with a port in 1..65535`);
  }
  return addr;
}
