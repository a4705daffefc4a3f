import { mulberry32 } from "../../src/util/random.js";

/** A seeded PRNG so randomized tests replay from a printed seed. */
export const seededRng = mulberry32;

/** The seed for a randomized test: $SEED when set (replay), else a fresh one. */
export function testSeed(): number {
  return process.env.SEED ? Number(process.env.SEED) : Math.floor(Math.random() * 2 ** 31);
}
