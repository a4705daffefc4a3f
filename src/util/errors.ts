/**
 * What an error is about, where the thrower knows it: logs carry these as fields and a caller
 * can act on them without parsing the message.
 */
export interface ErrorContext {
  regionId?: bigint;
  storeId?: bigint;
  key?: Uint8Array;
  term?: bigint;
}

export interface TinyKvErrorOptions {
  /** The error this one wraps (kept as the standard `cause`, so stack traces chain). */
  cause?: unknown;
  context?: ErrorContext;
}

/**
 * The base of the project's errors: a message that says what went wrong and where, the cause it
 * wraps and its context. Its name is the subclass's own, so logs and `toString()` tell them apart.
 */
export class TinyKvError extends Error {
  readonly context: ErrorContext;

  constructor(message: string, opts: TinyKvErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.context = opts.context ?? {};
  }
}
