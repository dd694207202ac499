// Process-wide settings and what this installation runs on (for `sparse-mixer doctor`).
import * as fs from 'fs';
import * as os from 'os';
import { loadAddon, readBuildRecord } from './binding';
import { N, THREADS_ENV } from './native';
import type { MallocTuning, NativeHeapStats } from './native-api';
import { applyRuntimeDefaults } from './runtime-env';

/** Intra-op threads libtorch uses (defaults to all cores; see SPARSE_MIXER_NUM_THREADS). */
export function getNumThreads(): number {
  return N.getNumThreads();
}

/** At most the CPUs this process may run on: more only slow libtorch down, and far more exhaust memory. */
export function setNumThreads(n: number): void {
  const limit = os.availableParallelism();
  if (!Number.isInteger(n) || n < 1 || n > limit) throw new RangeError(`setNumThreads: expected an integer from 1 to ${limit} (the CPUs available), got ${n}`);
  N.setNumThreads(n);
}

/**
 * Hands freed native heap memory back to the operating system (glibc's malloc_trim), so resident
 * memory shows what is really in use. Returns false where the C library cannot.
 */
export function releaseFreeMemory(): boolean {
  return N.releaseFreeMemory();
}

/**
 * The C library's heap (glibc's mallinfo2, summed over arenas): bytes native code holds outside
 * tensors as well as tensors' CPU storage, and bytes malloc keeps free. Undefined where the C
 * library cannot tell (not glibc, or glibc older than 2.33).
 */
export function nativeHeap(): NativeHeapStats | undefined {
  // An addon built before this binding existed (an older prebuild) cannot tell either.
  return typeof N.nativeHeapStats === 'function' ? N.nativeHeapStats() : undefined;
}

export interface RuntimeTuningInfo {
  /** False when SPARSE_MIXER_TUNE_RUNTIME=0 turned the tuning off. */
  enabled: boolean;
  /** Environment variables set before the native libraries loaded (the user's own values win). */
  environment: Record<string, string>;
  /** malloc keeps freed memory for reuse instead of mapping it anew; undefined from an older binary. */
  malloc: MallocTuning | undefined;
}

/**
 * The process-wide runtime tuning this package applied when it loaded (OpenMP wait policy, malloc
 * thresholds; README, "Runtime tuning"). Turn it off with SPARSE_MIXER_TUNE_RUNTIME=0.
 */
export function runtimeTuning(): RuntimeTuningInfo {
  const env = applyRuntimeDefaults(); // already applied: this only reads the record
  return { enabled: env.enabled, environment: { ...env.set }, malloc: N.mallocTuning?.() };
}

export interface BlasInfo {
  /** The shared library really mapped into this process, or undefined if none was found. */
  library: string | undefined;
  kind: 'openblas' | 'mkl' | 'reference' | 'blis' | 'other' | 'unknown';
  /** Set when the BLAS is the slow reference implementation. */
  warning?: string;
}

/** Finds the BLAS libtorch actually loaded, from this process's memory map (Linux). */
export function blasInfo(): BlasInfo {
  let maps = '';
  try {
    maps = fs.readFileSync('/proc/self/maps', 'utf8');
  } catch {
    return { library: undefined, kind: 'unknown' };
  }
  const libs = new Set<string>();
  for (const line of maps.split('\n')) {
    const file = line.slice(line.indexOf('/'));
    if (line.includes('/') && /(blas|mkl_rt|libmkl|blis)[^/]*\.so/i.test(file)) libs.add(file.trim());
  }
  const found = [...libs];
  const pick = (re: RegExp) => found.find((f) => re.test(f));
  const openblas = pick(/openblas/i);
  if (openblas) return { library: openblas, kind: 'openblas' };
  const mkl = pick(/mkl/i);
  if (mkl) return { library: mkl, kind: 'mkl' };
  const blis = pick(/blis/i);
  if (blis) return { library: blis, kind: 'blis' };
  const reference = pick(/\/blas\/libblas\.so/);
  if (reference) {
    return {
      library: reference,
      kind: 'reference',
      warning:
        'libtorch is using the reference BLAS, about 35x slower than OpenBLAS: apt-get install libopenblas0-pthread',
    };
  }
  // libtorch built with a statically linked BLAS (PyTorch's own wheels bundle MKL or OpenBLAS).
  const config = N.showConfig();
  const m = /BLAS_INFO=(\w+)/.exec(config);
  return { library: found[0], kind: m ? (m[1] === 'mkl' ? 'mkl' : m[1] === 'open' ? 'openblas' : 'other') : 'unknown' };
}

export interface SystemInfo {
  version: string;
  libtorch: { version: string; dir: string; foundVia: string };
  addon: { file: string; prebuilt: boolean; cudaKernels: boolean; napiVersion: number; cpuGemm: 'onednn' | 'aten' };
  cuda: { available: boolean; deviceCount: number };
  blas: BlasInfo;
  threads: { intraOp: number; setBy: string };
  tuning: RuntimeTuningInfo;
  /** Process-group backends this build has, for training on several processes. */
  distributed: { backends: string[] };
  node: string;
}

export function systemInfo(): SystemInfo {
  const loaded = loadAddon();
  const build = N.buildInfo();
  const record = readBuildRecord(loaded.file);
  const pkg = JSON.parse(fs.readFileSync(require.resolve('../../../package.json'), 'utf8')) as { version: string };
  return {
    version: pkg.version,
    libtorch: {
      version: record?.libtorch_version ?? build.libtorchVersion,
      dir: build.libtorchDir,
      foundVia: build.libtorchSource,
    },
    addon: { file: loaded.file, prebuilt: loaded.prebuilt, cudaKernels: build.cudaKernels, napiVersion: build.napiVersion, cpuGemm: build.cpuGemm ?? 'aten' },
    cuda: { available: N.cudaIsAvailable(), deviceCount: N.cudaDeviceCount() },
    blas: blasInfo(),
    threads: {
      intraOp: N.getNumThreads(),
      setBy: process.env[THREADS_ENV] ? THREADS_ENV : 'default (all cores)',
    },
    tuning: runtimeTuning(),
    // An addon built before distributed training existed (an older prebuild) has none.
    distributed: { backends: typeof N.distBackends === 'function' ? N.distBackends() : [] },
    node: process.version,
  };
}
