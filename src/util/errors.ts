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
  /**
   * An answer a caller meets in normal operation and acts on (a region moved, a key is locked, a
   * txn conflicts), not a fault: it captures no stack, which was a visible share of a busy
   * client's and the simulator's time. Its message and context say where it came from; `stack`
   * is the "Name: message" line alone.
   */
  answer?: boolean;
}

/**
 * The base of the project's errors: a message that says what went wrong and where, the cause it
 * wraps and its context. Its name is the subclass's own, so logs and `toString()` tell them apart.
 */
export class TinyKvError extends Error {
  readonly context: ErrorContext;

  constructor(message: string, opts: TinyKvErrorOptions = {}) {
    const stackTraceLimit = Error.stackTraceLimit;
    if (opts.answer) Error.stackTraceLimit = 0;
    try {
      super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    this.name = new.target.name;
    this.context = opts.context ?? {};
  }
}
