// The loaded addon, with the process-wide defaults applied once.
import * as os from 'os';
import { loadAddon } from './binding';
import type { NativeAddon } from './native-api';

/** Environment variable that sets the intra-op thread count. */
export const THREADS_ENV = 'SPARSE_MIXER_NUM_THREADS';

/** libtorch defaults to half the cores (1 on a 2-core machine); we default to all of them. */
export function defaultThreadCount(): number {
  const fromEnv = process.env[THREADS_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    const n = Number(fromEnv);
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(`${THREADS_ENV} must be a positive integer, got '${fromEnv}'`);
    }
    if (n > os.availableParallelism()) {
      throw new Error(`${THREADS_ENV} must be at most ${os.availableParallelism()} (the CPUs this process can run on), got '${fromEnv}'`);
    }
    return n;
  }
  return os.availableParallelism();
}

export const N: NativeAddon = loadAddon().addon;
N.setNumThreads(defaultThreadCount());
