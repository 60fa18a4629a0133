// A deterministic PRNG for fuzz tests (xorshift32): a failure replays from its seed.
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** The same sequence as rng(seed), as unsigned 32-bit integers (addresses, ports). */
export function rngU32(seed: number): () => number {
  const next = rng(seed);
  return () => next() * 4294967296;
}
