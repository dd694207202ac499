// Process environment that the native libraries read once, when they are loaded: it has to be set
// before the addon is required, so this runs first (binding.ts).
//
// Why: Debian's libtorch runs two thread pools on the same cores, OpenMP's (libtorch's own
// parallel loops and our kernels) and OpenBLAS's pthreads (every matmul). OpenMP workers spin
// after each parallel loop by default and take the cores the BLAS threads need next, and the
// other way round. Letting OpenMP workers sleep at once made BERT-base inference 1.3x and Fast
// Sparse Mixer inference 1.6-2x faster on a 2-core machine (README, "Runtime tuning"). The C
// heap part of the tuning (malloc keeping freed pages) is done natively, in native/runtime.cc.

/** Set to 0 to leave the C library and OpenMP at their own defaults (native/runtime.cc reads it too). */
const TUNE_ENV = 'SPARSE_MIXER_TUNE_RUNTIME';

/** The variables we set when the user has not, and their values. */
const RUNTIME_DEFAULTS: Readonly<Record<string, string>> = { OMP_WAIT_POLICY: 'PASSIVE' };

export interface RuntimeTuning {
  /** False when SPARSE_MIXER_TUNE_RUNTIME=0 turned it off. */
  enabled: boolean;
  /** The variables this process set (a user's own value is never replaced). */
  set: Record<string, string>;
}

let applied: RuntimeTuning | undefined;

/** Sets RUNTIME_DEFAULTS where the environment has no value yet; idempotent. */
export function applyRuntimeDefaults(): RuntimeTuning {
  if (applied) return applied;
  const enabled = process.env[TUNE_ENV] !== '0';
  const set: Record<string, string> = {};
  if (enabled) {
    for (const [name, value] of Object.entries(RUNTIME_DEFAULTS)) {
      if (process.env[name] === undefined || process.env[name] === '') {
        process.env[name] = value;
        set[name] = value;
      }
    }
  }
  applied = { enabled, set };
  return applied;
}

/**
 * The environment as the user gave it to this process: without the variables we set. For child
 * processes that should run with their own defaults (the PyTorch peer of the benchmarks).
 */
export function userEnvironment(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(applied?.set ?? {})) delete env[name];
  return env;
}
