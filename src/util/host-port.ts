import { TinyKvError } from "./errors.js";

/** An address that is not host:port. */
export class InvalidAddressError extends TinyKvError {
  constructor(
    readonly addr: string,
    readonly why: string,
  ) {
    super(`${JSON.stringify(addr)} is not host:port: ${why}`);
    this.name = "InvalidAddressError";
  }
}

/**
 * "host:port", "[v6]:port" or ":port" as node:net takes them. "localhost" is 127.0.0.1 on both
 * ends (the README's addresses are IPv4; a lookup could pick ::1 on one side only).
 */
export function splitHostPort(addr: string): { host: string | undefined; port: number } {
  const at = addr.lastIndexOf(":");
  if (at < 0) throw new InvalidAddressError(addr, "no port");
  const port = Number(addr.slice(at + 1));
  if (addr.slice(at + 1) === "" || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new InvalidAddressError(addr, "the port is not a number from 0 to 65535");
  let host: string | undefined = addr.slice(0, at);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  if (host === "") host = undefined;
  else if (host === "localhost") host = "127.0.0.1";
  return { host, port };
}
