/** Key naming and key choosers (uniform, YCSB-style scrambled zipfian). */

export const KEY_PREFIX = "bench/k";

/** Fixed-width keys so the lexicographic order is the numeric order. */
export function keyOf(i: number): Buffer {
  return Buffer.from(KEY_PREFIX + String(i).padStart(10, "0"));
}

export type Distribution = "uniform" | "zipfian";

export interface KeyChooser {
  next(): number;
}

export function uniform(n: number): KeyChooser {
  return { next: () => Math.floor(Math.random() * n) };
}

/**
 * Gray et al.'s zipfian generator as in YCSB's ZipfianGenerator (theta 0.99), with the rank
 * scrambled by a 64-bit FNV hash (ScrambledZipfianGenerator) so the hot keys are spread over the
 * key space instead of all sitting at its start.
 */
export function zipfian(n: number, theta = 0.99): KeyChooser {
  let zetan = 0;
  for (let i = 1; i <= n; i++) zetan += 1 / i ** theta;
  const zeta2 = 1 + 1 / 2 ** theta;
  const alpha = 1 / (1 - theta);
  const eta = (1 - (2 / n) ** (1 - theta)) / (1 - zeta2 / zetan);
  const rank = (): number => {
    const u = Math.random();
    const uz = u * zetan;
    if (uz < 1) return 0;
    if (uz < 1 + 0.5 ** theta) return 1;
    return Math.min(n - 1, Math.floor(n * (eta * u - eta + 1) ** alpha));
  };
  return { next: () => Number(fnv64(rank()) % BigInt(n)) };
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK = (1n << 64n) - 1n;
function fnv64(v: number): bigint {
  let h = FNV_OFFSET;
  let x = BigInt(v);
  for (let i = 0; i < 8; i++) {
    h ^= x & 0xffn;
    h = (h * FNV_PRIME) & MASK;
    x >>= 8n;
  }
  return h;
}

export function chooser(d: Distribution, n: number): KeyChooser {
  return d === "zipfian" ? zipfian(n) : uniform(n);
}

/** Keys per op of the `load` workload: one RawBatchPut of consecutive keys (a bulk load's shape). */
export const LOAD_BATCH_KEYS = 100;
