/**
 * Randomness a failing run can repeat: the seed is TEST_SEED when set, else drawn once per process, and tests print
 * it with their summary. mulberry32: small, fast, and good enough to pick batch sizes and moments.
 */
export const TEST_SEED = Number(process.env.TEST_SEED ?? Math.floor(Math.random() * 2 ** 32));

export function seededRandom(seed = TEST_SEED): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
