/**
 * Imported first by the server and scheduler entry points (and the bench): V8 optimizes a hot
 * function only after it has run for a while (the "interrupt budget", about 66 KB of bytecode per
 * tick, times 3 ticks). A store's write path is a long chain of small functions, each run a few
 * times per write, so at one client it ran unoptimized for 8-10 s after a start or a leader move
 * (about 150 writes/s rising to 550). A quarter of the budget brings the rise to 2-3 s and costs
 * a little more compile time once. TINYKV_INTERRUPT_BUDGET=<bytes> overrides it; 0 keeps V8's own.
 */
import { setFlagsFromString } from "node:v8";

const DEFAULT_INTERRUPT_BUDGET = 16 * 1024;

const configured = process.env.TINYKV_INTERRUPT_BUDGET;
const budget = configured === undefined || configured === "" ? DEFAULT_INTERRUPT_BUDGET : Number(configured);
if (!Number.isInteger(budget) || budget < 0)
  process.stderr.write(`ignoring TINYKV_INTERRUPT_BUDGET=${configured}: not a whole number of bytes\n`);
else if (budget > 0) setFlagsFromString(`--interrupt-budget=${budget}`);
