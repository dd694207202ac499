// The shape of the native addon's exports. Tensors cross the boundary as integer handles into
// the addon's tensor table; dtypes as the integer codes of dtype.ts.

/** An index into the native tensor table. */
export type Handle = number;
type H = Handle;
type Dims = readonly number[];
type Scalar = number | boolean;
export type Reduction = 'mean' | 'sum' | 'none';

export interface DeviceMemory {
  numTensors: number;
  numBytes: number;
}

export interface NativeMemoryStats {
  numTensors: number;
  devices: Record<string, DeviceMemory>;
}

/** The CUDA caching allocator's statistics for one device. */
export interface CudaMemoryStats {
  allocatedBytes: number;
  /** Most bytes held by tensors since the last resetPeakMemory (or start). */
  peakAllocatedBytes: number;
  reservedBytes: number;
}

export interface NativeBuildInfo {
  libtorchVersion: string;
  libtorchDir: string;
  libtorchSource: string;
  cudaKernels: boolean;
  napiVersion: number;
  /** What float32 CPU linear layers run on: oneDNN's GEMM, or libtorch's own BLAS path (undefined: an older binary). */
  cpuGemm?: 'onednn' | 'aten';
}

export interface NativeAddon {
  // creation
  fromBuffer(data: ArrayBufferView, shape: Dims, sourceDtype: number, dtype: number, device?: string): H;
  zeros(shape: Dims, dtype?: number, device?: string): H;
  ones(shape: Dims, dtype?: number, device?: string): H;
  empty(shape: Dims, dtype?: number, device?: string): H;
  full(shape: Dims, value: Scalar, dtype?: number, device?: string): H;
  arange(start: number, end: number, step: number, dtype?: number, device?: string): H;
  eye(n: number, m: number, dtype?: number, device?: string): H;
  rand(shape: Dims, generator?: number, dtype?: number, device?: string): H;
  randn(shape: Dims, generator?: number, dtype?: number, device?: string): H;
  randint(low: number, high: number, shape: Dims, generator?: number, dtype?: number, device?: string): H;
  randperm(n: number, generator?: number, dtype?: number, device?: string): H;
  generatorNew(seed: number): number;
  generatorFree(id: number): void;
  manualSeed(seed: number): void;
  getRngState(device?: string): H;
  setRngState(state: H, device?: string): void;

  // metadata, read-back, lifetime
  shape(t: H): number[];
  strides(t: H): number[];
  dtype(t: H): number;
  device(t: H): string;
  dataSync(t: H): ArrayBuffer;
  dataAsync(t: H): Promise<ArrayBuffer>;
  item(t: H): number | boolean;
  release(t: H): void;
  releaseMany(handles: Int32Array, count?: number): void;
  isLive(t: H): boolean;
  memoryStats(): NativeMemoryStats;

  // views and indexing
  reshape(t: H, shape: Dims): H;
  view(t: H, shape: Dims): H;
  transpose(t: H, d0: number, d1: number): H;
  permute(t: H, dims: Dims): H;
  narrow(t: H, dim: number, start: number, length: number): H;
  slice(t: H, dim: number, start: number | undefined, end: number | undefined, step: number): H;
  select(t: H, dim: number, index: number): H;
  indexSelect(t: H, dim: number, index: H): H;
  gather(t: H, dim: number, index: H): H;
  scatter(t: H, dim: number, index: H, src: H): H;
  scatterAdd(t: H, dim: number, index: H, src: H): H;
  indexAdd(t: H, dim: number, index: H, src: H): H;
  maskedFill(t: H, mask: H, value: Scalar): H;
  maskedFillInPlace(t: H, mask: H, value: Scalar): void;
  cat(ts: readonly H[], dim: number): H;
  stack(ts: readonly H[], dim: number): H;
  split(t: H, sizeOrSizes: number | Dims, dim: number): H[];
  chunk(t: H, chunks: number, dim: number): H[];
  contiguous(t: H): H;
  squeeze(t: H, dim?: number): H;
  unsqueeze(t: H, dim: number): H;
  expand(t: H, shape: Dims): H;
  repeat(t: H, repeats: Dims): H;
  flatten(t: H, start: number, end: number): H;
  toDtype(t: H, dtype: number): H;
  toDevice(t: H, device: string): H;
  clone(t: H): H;
  tril(t: H, diagonal: number): H;
  triu(t: H, diagonal: number): H;
  flip(t: H, dims: Dims): H;
  roll(t: H, shifts: Dims, dims: Dims): H;

  // element-wise
  add(a: H, b: H): H;
  sub(a: H, b: H): H;
  mul(a: H, b: H): H;
  div(a: H, b: H): H;
  pow(a: H, b: H): H;
  remainder(a: H, b: H): H;
  maximum(a: H, b: H): H;
  minimum(a: H, b: H): H;
  eq(a: H, b: H): H;
  ne(a: H, b: H): H;
  lt(a: H, b: H): H;
  le(a: H, b: H): H;
  gt(a: H, b: H): H;
  ge(a: H, b: H): H;
  logicalAnd(a: H, b: H): H;
  logicalOr(a: H, b: H): H;
  addScalar(a: H, s: Scalar): H;
  subScalar(a: H, s: Scalar): H;
  rsubScalar(a: H, s: Scalar): H;
  mulScalar(a: H, s: Scalar): H;
  divScalar(a: H, s: Scalar): H;
  rdivScalar(a: H, s: Scalar): H;
  powScalar(a: H, s: Scalar): H;
  remainderScalar(a: H, s: Scalar): H;
  eqScalar(a: H, s: Scalar): H;
  neScalar(a: H, s: Scalar): H;
  ltScalar(a: H, s: Scalar): H;
  leScalar(a: H, s: Scalar): H;
  gtScalar(a: H, s: Scalar): H;
  geScalar(a: H, s: Scalar): H;
  neg(a: H): H;
  abs(a: H): H;
  exp(a: H): H;
  log(a: H): H;
  log1p(a: H): H;
  sqrt(a: H): H;
  rsqrt(a: H): H;
  tanh(a: H): H;
  sigmoid(a: H): H;
  relu(a: H): H;
  sin(a: H): H;
  cos(a: H): H;
  square(a: H): H;
  reciprocal(a: H): H;
  floor(a: H): H;
  ceil(a: H): H;
  round(a: H): H;
  sign(a: H): H;
  erf(a: H): H;
  logicalNot(a: H): H;
  isfinite(a: H): H;
  isnan(a: H): H;
  real(a: H): H;
  imag(a: H): H;
  clamp(a: H, min?: number, max?: number): H;
  where(cond: H, a: H, b: H): H;
  addcmul(a: H, b: H, c: H, value: number): H;
  addInPlace(a: H, b: H, alpha: number): void;
  mulInPlace(a: H, b: H): void;
  mulScalarInPlace(a: H, s: number): void;
  copyInPlace(a: H, b: H): void;
  zeroInPlace(a: H): void;
  fillInPlace(a: H, s: Scalar): void;

  // reductions
  sum(t: H, dims: Dims | undefined, keepdim: boolean, dtype?: number): H;
  mean(t: H, dims: Dims | undefined, keepdim: boolean, dtype?: number): H;
  prod(t: H, dim?: number, keepdim?: boolean): H;
  variance(t: H, dims: Dims, unbiased: boolean, keepdim: boolean): H;
  maxAll(t: H): H;
  minAll(t: H): H;
  maxDim(t: H, dim: number, keepdim: boolean): [H, H];
  minDim(t: H, dim: number, keepdim: boolean): [H, H];
  argmax(t: H, dim: number | undefined, keepdim: boolean): H;
  argmin(t: H, dim: number | undefined, keepdim: boolean): H;
  logsumexp(t: H, dims: Dims, keepdim: boolean): H;
  topk(t: H, k: number, dim: number, largest: boolean, sorted: boolean): [H, H];
  sort(t: H, dim: number, descending: boolean): [H, H];
  argsort(t: H, dim: number, descending: boolean): H;
  cumsum(t: H, dim: number, dtype?: number): H;
  all(t: H): H;
  any(t: H): H;
  norm(t: H, p: number): H;

  // linear algebra
  matmul(a: H, b: H, alpha?: number): H;
  bmm(a: H, b: H): H;
  baddbmm(input: H, b1: H, b2: H, beta: number, alpha: number): H;
  addmm(input: H, m1: H, m2: H, beta: number, alpha: number): H;
  einsum(equation: string, ts: readonly H[]): H;
  fftn(t: H, dims: Dims, inverse: boolean): H;

  // neural-network functions
  linear(x: H, weight: H, bias?: H): H;
  layerNorm(x: H, normalizedShape: Dims, weight: H | undefined, bias: H | undefined, eps: number): H;
  gelu(x: H, tanhApproximation: boolean): H;
  softmax(x: H, dim: number, dtype?: number): H;
  logSoftmax(x: H, dim: number, dtype?: number): H;
  dropout(x: H, p: number, train: boolean): H;
  scaledDotProductAttention(q: H, k: H, v: H, mask: H | undefined, dropoutP: number): H;
  readonly hasScaledDotProductAttention: boolean;
  embedding(weight: H, indices: H, paddingIdx: number): H;
  crossEntropy(logits: H, target: H, weight: H | undefined, reduction: Reduction, ignoreIndex: number, labelSmoothing: number): H;
  mseLoss(a: H, b: H, reduction: Reduction): H;
  oneHot(indices: H, numClasses: number): H;

  // autograd
  setRequiresGrad(t: H, flag: boolean): void;
  requiresGrad(t: H): boolean;
  isLeaf(t: H): boolean;
  retainGrad(t: H): void;
  backward(t: H, gradient: H | undefined, retainGraph: boolean): void;
  grad(t: H): H | undefined;
  setGrad(t: H, grad?: H): void;
  setData(t: H, source: H): void;
  detach(t: H): H;
  isGradEnabled(): boolean;
  setGradEnabled(flag: boolean): void;
  autocastEnter(device: 'cpu' | 'cuda', dtype: number, enabled: boolean): { enabled: boolean; dtype: number };
  autocastExit(device: 'cpu' | 'cuda', enabled: boolean, dtype: number): void;
  isAutocastEnabled(device: 'cpu' | 'cuda'): boolean;

  // fused MoE
  moeRoute(
    probs: H,
    routerType: 'experts_choose' | 'tokens_choose',
    k: number,
    capacity: number,
    batchPrioritized: boolean,
  ): { slotToken: H; expertFraction: H; dispatchedTokens: H; filledSlots: H };
  moeDispatch(x: H, slotToken: H): H;
  moeCombine(y: H, slotToken: H, slotWeight: H, tokensPerGroup: number, deterministic: boolean): H;

  // SentencePiece
  spLoad(source: string | Uint8Array): number;
  spFree(id: number): void;
  spEncode(id: number, text: string): Int32Array;
  spEncodePieces(id: number, text: string): string[];
  spDecode(id: number, ids: Int32Array): string;
  spPieceToId(id: number, piece: string): number;
  spIdToPiece(id: number, token: number): string;
  spInfo(id: number): { vocabSize: number; padId: number; unkId: number; bosId: number; eosId: number };
  spEncodeBatch(id: number, texts: readonly string[]): Promise<{ ids: Int32Array; offsets: Int32Array }>;
  spTrain(args: string, sentences: readonly string[]): Promise<Uint8Array>;

  // optimizer
  adamwStep(params: readonly H[], m: readonly H[], v: readonly H[], decay: Uint8Array, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
  gradNorm(params: readonly H[]): number;
  clipGradNorm(params: readonly H[], maxNorm: number, norm?: number): number;

  // runtime
  buildInfo(): NativeBuildInfo;
  showConfig(): string;
  getNumThreads(): number;
  setNumThreads(n: number): void;
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  cudaSynchronize(): void;
  cudaMemoryStats(index: number): CudaMemoryStats;
  cudaResetPeakMemory(index: number): void;
  releaseFreeMemory(): boolean;
  nativeHeapStats(): NativeHeapStats | undefined;
  mallocTuning?(): MallocTuning;

  // process groups and collectives (native/distributed); each collective returns a work id
  distInit(options: { rank: number; worldSize: number; masterAddr: string; masterPort: number; timeoutMs: number }): { group: number; rank: number; size: number };
  distNewGroup(globalRanks: readonly number[], name: string): number;
  distDestroy(): void;
  distIsInitialized(): boolean;
  distBackends(): string[];
  distAllReduce(group: number, tensors: readonly H[], op: 'sum' | 'product' | 'min' | 'max'): number;
  distBroadcast(group: number, tensors: readonly H[], src: number): number;
  distAllGather(group: number, tensor: H): { work: number; outputs: H[] };
  distAllToAll(group: number, input: H, outputSplits?: readonly number[], inputSplits?: readonly number[]): { work: number; output: H };
  distBarrier(group: number): number;
  workWait(work: number): void;
  workWaitAsync(work: number): Promise<void>;
  workIsCompleted(work: number): boolean;
  gradSyncNew(group: number, params: readonly H[], bucketBytes: number, firstBucketBytes: number, divisor: number, rowTables?: readonly number[]): { id: number; buckets: number[][] };
  gradSyncPrepare(id: number, sync: boolean): void;
  gradSyncFinish(id: number): GradSyncStats;
  gradSyncFree(id: number): void;
  rowSinkNew(): number;
  rowSinkLookup(sink: number, table: H, ids: H): H;
  rowSinkFree(sink: number): void;
  expertsToRanks(group: number, x: H, slotsPerRank: readonly number[]): H;
  expertsFromRanks(group: number, y: H, slotsPerRank: readonly number[]): H;
  exitWithParent(parentPid: number): boolean;

  // profiler (native/profiler.cc)
  profilerStart(cuda: boolean): void;
  profilerPushScope(name: string): void;
  profilerPopScope(): void;
  profilerStop(): import('./profiler').Profile;
}

/** One step's gradient averaging (native/distributed/grad_sync.cc). */
export interface GradSyncStats {
  buckets: number;
  /** Bytes all-reduced (this rank's payload). */
  bytes: number;
  /** Milliseconds during which some bucket was in flight. */
  commMs: number;
  /** Milliseconds finish() waited after backward had ended: communication not hidden by backward. */
  exposedMs: number;
  /** Milliseconds from prepare() to the first bucket's start. */
  firstLaunchMs: number;
}

/** What native/runtime.cc did to glibc's malloc at load time (see keepFreedPages there). */
export interface MallocTuning {
  /** True when the thresholds below are in force. */
  applied: boolean;
  /** Blocks up to this size come from the heap and are reused instead of being mapped anew. */
  mmapThresholdBytes: number;
  /** Free memory at the heap's top is returned to the system only past this. */
  trimThresholdBytes: number;
}

/** glibc's heap, from mallinfo2() (summed over all malloc arenas). */
export interface NativeHeapStats {
  /** Bytes handed out by malloc and not yet freed (heap chunks and mmapped blocks). */
  inUseBytes: number;
  /** Bytes free inside the heap: malloc keeps them for reuse instead of returning them. */
  freeBytes: number;
  /** Bytes of heap (brk and arena) memory obtained from the system, in use or free. */
  heapBytes: number;
  /** Bytes in blocks served directly by mmap (large allocations). */
  mmapBytes: number;
  mmapCount: number;
  /** Free bytes held in fastbins. */
  fastbinFreeBytes: number;
  /** Free bytes at the top of the main heap that malloc_trim could release. */
  topPadBytes: number;
}
