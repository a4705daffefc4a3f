import { realRuntime } from "./runtime.js";

/** A source of uniform numbers in [0, 1). */
export type Rng = () => number;

/** mulberry32: a tiny, fast, seedable PRNG; the same seed replays the same sequence. */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed for when none is given: printed by whoever uses it, so a run can be replayed. */
export function randomSeed(): number {
  return Math.floor(realRuntime.random() * 0xffffffff) >>> 0;
}
