// Creating tensors: from JavaScript data, constant fills, ranges and seeded random numbers.
import { checkDevice, type Device } from './device';
import { dtypeCode, dtypeOfTypedArray, type DType } from './dtype';
import { N } from './native';
import { checkDims, checkInt, handleOf, Tensor, type NestedArray } from './tensor';

export interface CreateOptions {
  dtype?: DType;
  device?: Device;
}

export interface RandomOptions extends CreateOptions {
  /** A seeded generator; without one, the global generator (manualSeed) is used. */
  generator?: Generator;
}

function codeOf(options: CreateOptions): number | undefined {
  return options.dtype === undefined ? undefined : dtypeCode(options.dtype);
}

function deviceOf(options: CreateOptions): string | undefined {
  return options.device === undefined ? undefined : checkDevice(options.device);
}

/** Shape of a rectangular nested array, checking every level. */
function nestedShape(data: NestedArray<number | boolean>, path = 'data'): number[] {
  if (!Array.isArray(data)) return [];
  const shape = [data.length];
  if (data.length === 0) return shape;
  const inner = nestedShape(data[0]!, `${path}[0]`);
  for (let i = 1; i < data.length; i++) {
    const other = nestedShape(data[i]!, `${path}[${i}]`);
    if (other.length !== inner.length || other.some((d, k) => d !== inner[k])) {
      throw new Error(`tensor: ragged nested array: ${path}[${i}] has shape [${other}] but ${path}[0] has [${inner}]`);
    }
  }
  return shape.concat(inner);
}

/**
 * A tensor from a typed array (with a shape), a nested array or a number. Like torch.tensor, the
 * dtype defaults to the data's: bool for booleans, int64 when every number is a safe integer,
 * float32 otherwise (and the typed array's own type for typed arrays).
 */
export function tensor(
  data: NestedArray<number | boolean> | ArrayBufferView,
  options: CreateOptions & { shape?: readonly number[] } = {},
): Tensor {
  if (ArrayBuffer.isView(data)) {
    const source = dtypeOfTypedArray(data);
    const shape = options.shape === undefined ? [data.byteLength / (data as Float32Array).BYTES_PER_ELEMENT] : checkDims(options.shape);
    const target = options.dtype ?? source;
    return Tensor._wrap(N.fromBuffer(data, shape, dtypeCode(source), dtypeCode(target), deviceOf(options)));
  }
  const shape = nestedShape(data);
  const flat = (Array.isArray(data) ? (data as unknown[]).flat(Infinity) : [data]) as unknown[];
  let allBool = flat.length > 0;
  let allInt = true;
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    if (typeof v === 'boolean') {
      allInt = false;
      continue;
    }
    allBool = false;
    if (typeof v !== 'number') throw new TypeError(`tensor: element ${i} is ${typeof v}, expected a number or boolean`);
    if (!Number.isSafeInteger(v)) allInt = false; // beyond 2^53 a number is not an exact integer
  }
  if (!allBool && flat.some((v) => typeof v === 'boolean')) {
    throw new TypeError('tensor: cannot mix booleans and numbers');
  }
  const inferred: DType = allBool ? 'bool' : allInt && flat.length > 0 ? 'int64' : 'float32';
  const target = options.dtype ?? inferred;
  if (options.shape !== undefined) {
    throw new TypeError('tensor: shape is only for typed arrays; nested arrays carry their own');
  }
  const values = Float64Array.from(flat as (number | boolean)[], Number);
  return Tensor._wrap(N.fromBuffer(values, shape, dtypeCode('float64'), dtypeCode(target), deviceOf(options)));
}

export function scalar(value: number | boolean, options: CreateOptions = {}): Tensor {
  return tensor(value, options);
}

export function zeros(shape: readonly number[], options: CreateOptions = {}): Tensor {
  return Tensor._wrap(N.zeros(checkDims(shape), codeOf(options), deviceOf(options)));
}

export function ones(shape: readonly number[], options: CreateOptions = {}): Tensor {
  return Tensor._wrap(N.ones(checkDims(shape), codeOf(options), deviceOf(options)));
}

/** Uninitialised memory: fill it before reading. */
export function empty(shape: readonly number[], options: CreateOptions = {}): Tensor {
  return Tensor._wrap(N.empty(checkDims(shape), codeOf(options), deviceOf(options)));
}

export function full(shape: readonly number[], value: number | boolean, options: CreateOptions = {}): Tensor {
  if (typeof value !== 'number' && typeof value !== 'boolean') throw new TypeError('full: value must be a number');
  return Tensor._wrap(N.full(checkDims(shape), value, codeOf(options), deviceOf(options)));
}

export function zerosLike(t: Tensor, options: CreateOptions = {}): Tensor {
  return zeros(t.shape, { dtype: options.dtype ?? t.dtype, device: options.device ?? t.device });
}

export function onesLike(t: Tensor, options: CreateOptions = {}): Tensor {
  return ones(t.shape, { dtype: options.dtype ?? t.dtype, device: options.device ?? t.device });
}

/** [start, end) in steps; arange(n) is [0, n). Integer arguments give int64 unless dtype says otherwise. */
export function arange(startOrEnd: number, end?: number, step = 1, options: CreateOptions = {}): Tensor {
  const [s, e] = end === undefined ? [0, startOrEnd] : [startOrEnd, end];
  if (step === 0) throw new RangeError('arange: step must not be 0');
  const integral = Number.isInteger(s) && Number.isInteger(e) && Number.isInteger(step);
  const dtype = options.dtype ?? (integral ? 'int64' : 'float32');
  return Tensor._wrap(N.arange(s, e, step, dtypeCode(dtype), deviceOf(options)));
}

export function eye(n: number, m: number = n, options: CreateOptions = {}): Tensor {
  return Tensor._wrap(N.eye(checkInt(n, 'n'), checkInt(m, 'm'), codeOf(options), deviceOf(options)));
}

/** Uniform on [0, 1). */
export function rand(shape: readonly number[], options: RandomOptions = {}): Tensor {
  return Tensor._wrap(N.rand(checkDims(shape), options.generator?.id, codeOf(options), deviceOf(options)));
}

/** Standard normal. */
export function randn(shape: readonly number[], options: RandomOptions = {}): Tensor {
  return Tensor._wrap(N.randn(checkDims(shape), options.generator?.id, codeOf(options), deviceOf(options)));
}

/** Integers uniform on [low, high), int64 by default. */
export function randint(low: number, high: number, shape: readonly number[], options: RandomOptions = {}): Tensor {
  return Tensor._wrap(
    N.randint(checkInt(low, 'low'), checkInt(high, 'high'), checkDims(shape), options.generator?.id, codeOf(options), deviceOf(options)),
  );
}

export function randperm(n: number, options: RandomOptions = {}): Tensor {
  return Tensor._wrap(N.randperm(checkInt(n, 'n'), options.generator?.id, codeOf(options), deviceOf(options)));
}

/**
 * The state of a device's default generator (a uint8 tensor), e.g. to save in a checkpoint: the
 * CPU's by default; on a GPU, dropout draws from that GPU's generator.
 */
export function getRngState(device: Device = 'cpu'): Tensor {
  return Tensor._wrap(N.getRngState(checkDevice(device)));
}

/** Restores a state from getRngState(device): dropout and unseeded random numbers continue identically. */
export function setRngState(state: Tensor, device: Device = 'cpu'): void {
  N.setRngState(handleOf(state, 'state'), checkDevice(device));
}

/** Seeds libtorch's global generators (CPU and CUDA). */
export function manualSeed(seed: number): void {
  N.manualSeed(checkInt(seed, 'seed'));
}

/**
 * A seeded random-number generator. Numbers are drawn on the CPU and moved to the target device,
 * so a seed gives the same values everywhere. Call dispose() when done (a finalizer also frees it).
 */
export class Generator {
  readonly id: number;
  private static readonly finalizer = new FinalizationRegistry<number>((id) => N.generatorFree(id));

  constructor(seed: number) {
    this.id = N.generatorNew(checkInt(seed, 'seed'));
    Generator.finalizer.register(this, this.id, this);
  }

  dispose(): void {
    N.generatorFree(this.id);
    Generator.finalizer.unregister(this);
  }
}
