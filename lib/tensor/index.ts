// The tensor layer: everything above it in lib/ builds on these exports.
export { Tensor, type Operand, type NestedArray, type ValuesAndIndices } from './tensor';
export { DTYPES, type DType, type TypedArray, isFloatingPoint, isComplex } from './dtype';
export { cuda, type Device } from './device';
export {
  tensor,
  scalar,
  zeros,
  ones,
  empty,
  full,
  zerosLike,
  onesLike,
  arange,
  eye,
  rand,
  randn,
  randint,
  randperm,
  manualSeed,
  getRngState,
  setRngState,
  Generator,
  type CreateOptions,
  type RandomOptions,
} from './creation';
export * as functional from './functional';
export { cat, stack, where, einsum, matmul, bmm, baddbmm, addmm, fftn, ifftn } from './functional';
export { tidy, keep, dispose, memory, type MemoryInfo } from './lifetime';
export { noGrad, enableGrad, isGradEnabled, autocast, isAutocastEnabled, type AutocastOptions } from './autograd';
export { getNumThreads, setNumThreads, releaseFreeMemory, nativeHeap, runtimeTuning, type RuntimeTuningInfo, systemInfo, blasInfo, type SystemInfo, type BlasInfo } from './runtime';
export type { NativeHeapStats, MallocTuning } from './native-api';
export * as fusedMoe from './moe';
export * as optim from './optim';
export * as profiler from './profiler';
