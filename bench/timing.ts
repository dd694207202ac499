// Shared timing helpers for the benchmarks. This machine is shared and noisy, so measurements
// that are compared are interleaved round by round and reduced with the median.
export function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Milliseconds of one call. */
export function timeOnce(fn: () => void): number {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/**
 * Times several functions side by side: one warm-up call each, then `rounds` rounds in which each
 * function runs once, in turn. Returns the median milliseconds per function.
 */
export function timeInterleaved(fns: Record<string, () => void>, rounds: number): Record<string, number> {
  const samples: Record<string, number[]> = {};
  for (const [name, fn] of Object.entries(fns)) {
    fn();
    samples[name] = [];
  }
  for (let r = 0; r < rounds; r++) for (const [name, fn] of Object.entries(fns)) samples[name]!.push(timeOnce(fn));
  return Object.fromEntries(Object.entries(samples).map(([name, xs]) => [name, median(xs)]));
}

/**
 * A pause before a timed turn when two processes take turns: BLAS and OpenMP worker threads keep
 * spinning for a while after their last job (OpenBLAS up to ~0.1 s), and on a machine with few
 * cores the other process's spinning workers would slow whichever side runs next.
 */
export function settle(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
