import type { Logger } from "pino";
import { pino } from "pino";

export type { Logger };

/**
 * One pino root logger per process. Children carry structured context
 * (store_id, region_id, peer_id, term); nothing per request is logged at info.
 */
export function createLogger(level: string = process.env.LOG_LEVEL ?? "info", name?: string): Logger {
  return pino({ level, name, base: { pid: process.pid } });
}

/** A logger that drops everything, for tests and library defaults. */
export const silentLogger: Logger = pino({ level: "silent" });
