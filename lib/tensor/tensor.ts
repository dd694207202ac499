// The Tensor class: a thin handle on a native libtorch tensor.
import { inspect } from 'util';
import { checkDevice, type Device } from './device';
import { DTYPES, dtypeCode, dtypeFromCode, viewAs, type DType, type TypedArray } from './dtype';
import { adopt, release, type Owned } from './lifetime';
import { N } from './native';
import type { Handle } from './native-api';
import { showValue } from '../util/excerpt';

export type Operand = Tensor | number;
export type NestedArray<T> = T | NestedArray<T>[];

function handleOf(t: unknown, what = 'argument'): Handle {
  if (!(t instanceof Tensor)) {
    throw new TypeError(`${what} must be a Tensor, got ${describeValue(t)}`);
  }
  return t.handle;
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}

function checkInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw new TypeError(`${what} must be an integer, got ${describeValue(v)} ${String(v)}`);
  }
  return v;
}

function checkDims(dims: unknown, what = 'shape'): readonly number[] {
  if (!Array.isArray(dims)) throw new TypeError(`${what} must be an array of integers, got ${describeValue(dims)}`);
  for (const d of dims) checkInt(d, `every entry of ${what}`);
  return dims as number[];
}

/**
 * Checks the right-hand side of a binary op. Each op then calls its own tensor or scalar binding
 * directly: passing the bindings into one shared helper makes that helper's call site
 * megamorphic, which cost ~1 µs per op in the benchmark.
 */
function operand(b: unknown, name: string): void {
  if (typeof b !== 'number' && !(b instanceof Tensor)) {
    throw new TypeError(`${name}: the other operand must be a Tensor or a number, got ${describeValue(b)}`);
  }
}

export interface ValuesAndIndices {
  values: Tensor;
  indices: Tensor;
}

function pair([values, indices]: [Handle, Handle]): ValuesAndIndices {
  return { values: Tensor._wrap(values), indices: Tensor._wrap(indices) };
}

export class Tensor implements Owned {
  _h: Handle;
  _kept = false;
  _registered = false;
  private _shape: readonly number[] | undefined;

  /** Use the creation functions (tensor, zeros, randn, ...) rather than this constructor. */
  private constructor(handle: Handle) {
    this._h = handle;
    adopt(this);
  }

  /** @internal Wraps a handle that the addon just returned. */
  static _wrap(handle: Handle): Tensor {
    return new Tensor(handle);
  }

  /** The native handle; throws once the tensor has been disposed. */
  get handle(): Handle {
    if (this._h < 0) throw new Error('Tensor is disposed: it cannot be used after dispose() or outside its tidy() scope');
    return this._h;
  }

  get isDisposed(): boolean {
    return this._h < 0;
  }

  /** Frees the native memory now. Using the tensor afterwards throws. */
  dispose(): void {
    release(this);
  }

  // ---- metadata ----
  get shape(): readonly number[] {
    if (this._shape === undefined) this._shape = Object.freeze(N.shape(this.handle));
    return this._shape;
  }
  get rank(): number {
    return this.shape.length;
  }
  get numel(): number {
    let n = 1;
    for (const d of this.shape) n *= d;
    return n;
  }
  get dtype(): DType {
    return dtypeFromCode(N.dtype(this.handle));
  }
  get device(): Device {
    return N.device(this.handle) as Device;
  }
  get strides(): number[] {
    return N.strides(this.handle);
  }
  size(dim: number): number {
    const r = this.rank;
    const d = checkInt(dim, 'dim') < 0 ? dim + r : dim;
    if (d < 0 || d >= r) throw new RangeError(`size: dim ${dim} out of range for a tensor of rank ${r}`);
    return this.shape[d]!;
  }

  // ---- read-back ----
  /** The values as a typed array (see dtype.viewAs for the array type of each dtype). */
  dataSync(): TypedArray {
    return viewAs(this.dtype, N.dataSync(this.handle));
  }
  /** Like dataSync, but the copy runs off the JavaScript thread. */
  async data(): Promise<TypedArray> {
    const dtype = this.dtype;
    return viewAs(dtype, await N.dataAsync(this.handle));
  }
  /** The value of a one-element tensor. */
  item(): number {
    return Number(N.item(this.handle));
  }
  /**
   * The values as nested arrays (numbers; booleans for bool tensors; [real, imaginary] pairs for
   * complex tensors).
   */
  toArray(): NestedArray<number | boolean> {
    const flat = this.dataSync();
    const dtype = this.dtype;
    const isBool = dtype === 'bool';
    const values: (number | boolean)[] = Array.from(flat as ArrayLike<number | bigint>, (v) =>
      isBool ? v !== 0 : Number(v),
    );
    const shape = dtype === 'complex64' || dtype === 'complex128' ? [...this.shape, 2] : this.shape;
    if (shape.length === 0) return values[0]!;
    const build = (dim: number, offset: number): NestedArray<number | boolean> => {
      const n = shape[dim]!;
      if (dim === shape.length - 1) return values.slice(offset, offset + n);
      let stride = 1;
      for (let k = dim + 1; k < shape.length; k++) stride *= shape[k]!;
      const out: NestedArray<number | boolean>[] = [];
      for (let i = 0; i < n; i++) out.push(build(dim + 1, offset + i * stride));
      return out;
    };
    return build(0, 0);
  }

  // ---- conversion ----
  to(target: DType | Device): Tensor {
    if (typeof target !== 'string') throw new TypeError(`to: expected a dtype or a device, got ${describeValue(target)}`);
    if (target === 'cpu' || target === 'meta' || target.startsWith('cuda')) return Tensor._wrap(N.toDevice(this.handle, checkDevice(target)));
    if (!(DTYPES as readonly string[]).includes(target)) {
      throw new TypeError(`to: ${showValue(target)} is neither a dtype (${DTYPES.join(', ')}) nor a device ('cpu', 'cuda', 'cuda:N', 'meta')`);
    }
    return Tensor._wrap(N.toDtype(this.handle, dtypeCode(target as DType)));
  }
  float(): Tensor {
    return this.to('float32');
  }
  long(): Tensor {
    return this.to('int64');
  }
  clone(): Tensor {
    return Tensor._wrap(N.clone(this.handle));
  }
  contiguous(): Tensor {
    return Tensor._wrap(N.contiguous(this.handle));
  }

  // ---- views and indexing ----
  reshape(shape: readonly number[]): Tensor {
    return Tensor._wrap(N.reshape(this.handle, checkDims(shape)));
  }
  view(shape: readonly number[]): Tensor {
    return Tensor._wrap(N.view(this.handle, checkDims(shape)));
  }
  transpose(dim0: number, dim1: number): Tensor {
    return Tensor._wrap(N.transpose(this.handle, checkInt(dim0, 'dim0'), checkInt(dim1, 'dim1')));
  }
  /** Transpose of the last two dimensions. */
  get T(): Tensor {
    return this.transpose(-2, -1);
  }
  permute(dims: readonly number[]): Tensor {
    return Tensor._wrap(N.permute(this.handle, checkDims(dims, 'dims')));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return Tensor._wrap(N.narrow(this.handle, checkInt(dim, 'dim'), checkInt(start, 'start'), checkInt(length, 'length')));
  }
  /** Python-style slice along one dim: start/end may be negative or omitted. */
  slice(dim: number, start?: number, end?: number, step = 1): Tensor {
    if (start !== undefined) checkInt(start, 'start');
    if (end !== undefined) checkInt(end, 'end');
    return Tensor._wrap(N.slice(this.handle, checkInt(dim, 'dim'), start, end, checkInt(step, 'step')));
  }
  select(dim: number, index: number): Tensor {
    return Tensor._wrap(N.select(this.handle, checkInt(dim, 'dim'), checkInt(index, 'index')));
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return Tensor._wrap(N.indexSelect(this.handle, checkInt(dim, 'dim'), handleOf(index, 'index')));
  }
  gather(dim: number, index: Tensor): Tensor {
    return Tensor._wrap(N.gather(this.handle, checkInt(dim, 'dim'), handleOf(index, 'index')));
  }
  scatter(dim: number, index: Tensor, src: Tensor): Tensor {
    return Tensor._wrap(N.scatter(this.handle, checkInt(dim, 'dim'), handleOf(index, 'index'), handleOf(src, 'src')));
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return Tensor._wrap(N.scatterAdd(this.handle, checkInt(dim, 'dim'), handleOf(index, 'index'), handleOf(src, 'src')));
  }
  indexAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return Tensor._wrap(N.indexAdd(this.handle, checkInt(dim, 'dim'), handleOf(index, 'index'), handleOf(src, 'src')));
  }
  maskedFill(mask: Tensor, value: number | boolean): Tensor {
    if (typeof value !== 'number' && typeof value !== 'boolean') throw new TypeError('maskedFill: value must be a number');
    return Tensor._wrap(N.maskedFill(this.handle, handleOf(mask, 'mask'), value));
  }
  split(sizeOrSizes: number | readonly number[], dim = 0): Tensor[] {
    const arg = typeof sizeOrSizes === 'number' ? checkInt(sizeOrSizes, 'size') : checkDims(sizeOrSizes, 'sizes');
    return N.split(this.handle, arg, checkInt(dim, 'dim')).map((h) => Tensor._wrap(h));
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return N.chunk(this.handle, checkInt(chunks, 'chunks'), checkInt(dim, 'dim')).map((h) => Tensor._wrap(h));
  }
  squeeze(dim?: number): Tensor {
    return Tensor._wrap(N.squeeze(this.handle, dim === undefined ? undefined : checkInt(dim, 'dim')));
  }
  unsqueeze(dim: number): Tensor {
    return Tensor._wrap(N.unsqueeze(this.handle, checkInt(dim, 'dim')));
  }
  expand(shape: readonly number[]): Tensor {
    return Tensor._wrap(N.expand(this.handle, checkDims(shape)));
  }
  repeat(repeats: readonly number[]): Tensor {
    return Tensor._wrap(N.repeat(this.handle, checkDims(repeats, 'repeats')));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return Tensor._wrap(N.flatten(this.handle, checkInt(startDim, 'startDim'), checkInt(endDim, 'endDim')));
  }
  tril(diagonal = 0): Tensor {
    return Tensor._wrap(N.tril(this.handle, checkInt(diagonal, 'diagonal')));
  }
  triu(diagonal = 0): Tensor {
    return Tensor._wrap(N.triu(this.handle, checkInt(diagonal, 'diagonal')));
  }
  flip(dims: readonly number[]): Tensor {
    return Tensor._wrap(N.flip(this.handle, checkDims(dims, 'dims')));
  }
  roll(shifts: readonly number[], dims: readonly number[]): Tensor {
    return Tensor._wrap(N.roll(this.handle, checkDims(shifts, 'shifts'), checkDims(dims, 'dims')));
  }

  // ---- element-wise math ----
  add(other: Operand): Tensor {
    if (typeof other === 'number') return Tensor._wrap(N.addScalar(this.handle, other));
    operand(other, 'add');
    return Tensor._wrap(N.add(this.handle, (other as Tensor).handle));
  }
  sub(other: Operand): Tensor {
    if (typeof other === 'number') return Tensor._wrap(N.subScalar(this.handle, other));
    operand(other, 'sub');
    return Tensor._wrap(N.sub(this.handle, (other as Tensor).handle));
  }
  /** other - this */
  rsub(other: number): Tensor {
    return Tensor._wrap(N.rsubScalar(this.handle, other));
  }
  mul(other: Operand): Tensor {
    if (typeof other === 'number') return Tensor._wrap(N.mulScalar(this.handle, other));
    operand(other, 'mul');
    return Tensor._wrap(N.mul(this.handle, (other as Tensor).handle));
  }
  div(other: Operand): Tensor {
    if (typeof other === 'number') return Tensor._wrap(N.divScalar(this.handle, other));
    operand(other, 'div');
    return Tensor._wrap(N.div(this.handle, (other as Tensor).handle));
  }
  /** other / this */
  rdiv(other: number): Tensor {
    return Tensor._wrap(N.rdivScalar(this.handle, other));
  }
  pow(other: Operand): Tensor {
    if (typeof other === 'number') return Tensor._wrap(N.powScalar(this.handle, other));
    operand(other, 'pow');
    return Tensor._wrap(N.pow(this.handle, (other as Tensor).handle));
  }
  remainder(other: Operand): Tensor {
    if (typeof other === 'number') return Tensor._wrap(N.remainderScalar(this.handle, other));
    operand(other, 'remainder');
    return Tensor._wrap(N.remainder(this.handle, (other as Tensor).handle));
  }
  maximum(other: Tensor): Tensor {
    return Tensor._wrap(N.maximum(this.handle, handleOf(other, 'other')));
  }
  minimum(other: Tensor): Tensor {
    return Tensor._wrap(N.minimum(this.handle, handleOf(other, 'other')));
  }
  eq(other: Operand): Tensor {
    if (typeof other === 'number') return Tensor._wrap(N.eqScalar(this.handle, other));
    operand(other, 'eq');
    return Tensor._wrap(N.eq(this.handle, (other as Tensor).handle));
  }
  ne(other: Operand): Tensor {
    if (typeof other === 'number') return Tensor._wrap(N.neScalar(this.handle, other));
    operand(other, 'ne');
    return Tensor._wrap(N.ne(this.handle, (other as Tensor).handle));
  }
  lt(other: Operand): Tensor {
    if (typeof other === 'number') return Tensor._wrap(N.ltScalar(this.handle, other));
    operand(other, 'lt');
    return Tensor._wrap(N.lt(this.handle, (other as Tensor).handle));
  }
  le(other: Operand): Tensor {
    if (typeof other === 'number') return Tensor._wrap(N.leScalar(this.handle, other));
    operand(other, 'le');
    return Tensor._wrap(N.le(this.handle, (other as Tensor).handle));
  }
  gt(other: Operand): Tensor {
    if (typeof other === 'number') return Tensor._wrap(N.gtScalar(this.handle, other));
    operand(other, 'gt');
    return Tensor._wrap(N.gt(this.handle, (other as Tensor).handle));
  }
  ge(other: Operand): Tensor {
    if (typeof other === 'number') return Tensor._wrap(N.geScalar(this.handle, other));
    operand(other, 'ge');
    return Tensor._wrap(N.ge(this.handle, (other as Tensor).handle));
  }
  logicalAnd(other: Tensor): Tensor {
    return Tensor._wrap(N.logicalAnd(this.handle, handleOf(other, 'other')));
  }
  logicalOr(other: Tensor): Tensor {
    return Tensor._wrap(N.logicalOr(this.handle, handleOf(other, 'other')));
  }
  logicalNot(): Tensor {
    return Tensor._wrap(N.logicalNot(this.handle));
  }
  neg(): Tensor {
    return Tensor._wrap(N.neg(this.handle));
  }
  abs(): Tensor {
    return Tensor._wrap(N.abs(this.handle));
  }
  exp(): Tensor {
    return Tensor._wrap(N.exp(this.handle));
  }
  log(): Tensor {
    return Tensor._wrap(N.log(this.handle));
  }
  log1p(): Tensor {
    return Tensor._wrap(N.log1p(this.handle));
  }
  sqrt(): Tensor {
    return Tensor._wrap(N.sqrt(this.handle));
  }
  rsqrt(): Tensor {
    return Tensor._wrap(N.rsqrt(this.handle));
  }
  tanh(): Tensor {
    return Tensor._wrap(N.tanh(this.handle));
  }
  sigmoid(): Tensor {
    return Tensor._wrap(N.sigmoid(this.handle));
  }
  relu(): Tensor {
    return Tensor._wrap(N.relu(this.handle));
  }
  sin(): Tensor {
    return Tensor._wrap(N.sin(this.handle));
  }
  cos(): Tensor {
    return Tensor._wrap(N.cos(this.handle));
  }
  square(): Tensor {
    return Tensor._wrap(N.square(this.handle));
  }
  reciprocal(): Tensor {
    return Tensor._wrap(N.reciprocal(this.handle));
  }
  floor(): Tensor {
    return Tensor._wrap(N.floor(this.handle));
  }
  ceil(): Tensor {
    return Tensor._wrap(N.ceil(this.handle));
  }
  round(): Tensor {
    return Tensor._wrap(N.round(this.handle));
  }
  sign(): Tensor {
    return Tensor._wrap(N.sign(this.handle));
  }
  erf(): Tensor {
    return Tensor._wrap(N.erf(this.handle));
  }
  isfinite(): Tensor {
    return Tensor._wrap(N.isfinite(this.handle));
  }
  isnan(): Tensor {
    return Tensor._wrap(N.isnan(this.handle));
  }
  /** Real part (a view) of a complex tensor. */
  real(): Tensor {
    return Tensor._wrap(N.real(this.handle));
  }
  /** Imaginary part (a view) of a complex tensor. */
  imag(): Tensor {
    return Tensor._wrap(N.imag(this.handle));
  }
  clamp(min?: number, max?: number): Tensor {
    return Tensor._wrap(N.clamp(this.handle, min, max));
  }
  /** this + value * t1 * t2 */
  addcmul(t1: Tensor, t2: Tensor, value = 1): Tensor {
    return Tensor._wrap(N.addcmul(this.handle, handleOf(t1, 't1'), handleOf(t2, 't2'), value));
  }

  // ---- in-place updates (for parameter code; they bump the autograd version counter) ----
  /** this += alpha * other */
  addInPlace(other: Tensor, alpha = 1): this {
    N.addInPlace(this.handle, handleOf(other, 'other'), alpha);
    return this;
  }
  mulInPlace(other: Operand): this {
    if (typeof other === 'number') N.mulScalarInPlace(this.handle, other);
    else N.mulInPlace(this.handle, handleOf(other, 'other'));
    return this;
  }
  /** Sets the elements where mask is true to value, in place (no new tensor of this size). */
  maskedFillInPlace(mask: Tensor, value: number | boolean): this {
    if (typeof value !== 'number' && typeof value !== 'boolean') throw new TypeError('maskedFillInPlace: value must be a number');
    N.maskedFillInPlace(this.handle, handleOf(mask, 'mask'), value);
    return this;
  }
  copyFrom(source: Tensor): this {
    N.copyInPlace(this.handle, handleOf(source, 'source'));
    return this;
  }
  zeroInPlace(): this {
    N.zeroInPlace(this.handle);
    return this;
  }
  fillInPlace(value: number | boolean): this {
    N.fillInPlace(this.handle, value);
    return this;
  }

  // ---- reductions ----
  sum(dims?: number | readonly number[], keepdim = false, dtype?: DType): Tensor {
    return Tensor._wrap(N.sum(this.handle, dimList(dims), keepdim, dtype && dtypeCode(dtype)));
  }
  mean(dims?: number | readonly number[], keepdim = false, dtype?: DType): Tensor {
    return Tensor._wrap(N.mean(this.handle, dimList(dims), keepdim, dtype && dtypeCode(dtype)));
  }
  prod(dim?: number, keepdim = false): Tensor {
    return Tensor._wrap(N.prod(this.handle, dim === undefined ? undefined : checkInt(dim, 'dim'), keepdim));
  }
  var(dims: number | readonly number[], unbiased = true, keepdim = false): Tensor {
    return Tensor._wrap(N.variance(this.handle, dimList(dims) ?? [], unbiased, keepdim));
  }
  /** Maximum over all elements. */
  max(): Tensor {
    return Tensor._wrap(N.maxAll(this.handle));
  }
  min(): Tensor {
    return Tensor._wrap(N.minAll(this.handle));
  }
  /** Maximum along a dim, with the index of the first maximum. */
  maxAlong(dim: number, keepdim = false): ValuesAndIndices {
    return pair(N.maxDim(this.handle, checkInt(dim, 'dim'), keepdim));
  }
  minAlong(dim: number, keepdim = false): ValuesAndIndices {
    return pair(N.minDim(this.handle, checkInt(dim, 'dim'), keepdim));
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return Tensor._wrap(N.argmax(this.handle, dim === undefined ? undefined : checkInt(dim, 'dim'), keepdim));
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return Tensor._wrap(N.argmin(this.handle, dim === undefined ? undefined : checkInt(dim, 'dim'), keepdim));
  }
  logsumexp(dims: number | readonly number[], keepdim = false): Tensor {
    return Tensor._wrap(N.logsumexp(this.handle, dimList(dims) ?? [], keepdim));
  }
  topk(k: number, dim = -1, largest = true, sorted = true): ValuesAndIndices {
    return pair(N.topk(this.handle, checkInt(k, 'k'), checkInt(dim, 'dim'), largest, sorted));
  }
  /** Stable sort: equal values keep their original order. */
  sort(dim = -1, descending = false): ValuesAndIndices {
    return pair(N.sort(this.handle, checkInt(dim, 'dim'), descending));
  }
  argsort(dim = -1, descending = false): Tensor {
    return Tensor._wrap(N.argsort(this.handle, checkInt(dim, 'dim'), descending));
  }
  cumsum(dim: number, dtype?: DType): Tensor {
    return Tensor._wrap(N.cumsum(this.handle, checkInt(dim, 'dim'), dtype && dtypeCode(dtype)));
  }
  all(): Tensor {
    return Tensor._wrap(N.all(this.handle));
  }
  any(): Tensor {
    return Tensor._wrap(N.any(this.handle));
  }
  norm(p = 2): Tensor {
    return Tensor._wrap(N.norm(this.handle, p));
  }

  // ---- products ----
  matmul(other: Tensor): Tensor {
    return Tensor._wrap(N.matmul(this.handle, handleOf(other, 'other')));
  }
  bmm(other: Tensor): Tensor {
    return Tensor._wrap(N.bmm(this.handle, handleOf(other, 'other')));
  }

  // ---- autograd ----
  get requiresGrad(): boolean {
    return N.requiresGrad(this.handle);
  }
  set requiresGrad(flag: boolean) {
    N.setRequiresGrad(this.handle, flag);
  }
  /** Sets requiresGrad and returns this (for chaining). */
  requiresGrad_(flag = true): this {
    if (typeof flag !== 'boolean') throw new TypeError('requiresGrad_: flag must be a boolean');
    N.setRequiresGrad(this.handle, flag);
    return this;
  }
  get isLeaf(): boolean {
    return N.isLeaf(this.handle);
  }
  /** Keeps .grad for a non-leaf tensor. */
  retainGrad(): this {
    N.retainGrad(this.handle);
    return this;
  }
  /** Accumulates gradients into the leaves. A non-scalar tensor needs the gradient of its output. */
  backward(gradient?: Tensor, options: { retainGraph?: boolean } = {}): void {
    N.backward(this.handle, gradient === undefined ? undefined : handleOf(gradient, 'gradient'), options.retainGraph ?? false);
  }
  /** The accumulated gradient (a new handle on it each time), or undefined. */
  get grad(): Tensor | undefined {
    const h = N.grad(this.handle);
    return h === undefined ? undefined : Tensor._wrap(h);
  }
  set grad(value: Tensor | undefined) {
    N.setGrad(this.handle, value === undefined ? undefined : handleOf(value, 'grad'));
  }
  /** Drops the accumulated gradient (set-to-none semantics). */
  zeroGrad(): void {
    N.setGrad(this.handle);
  }
  /**
   * Replaces this tensor's data with a copy-free view of source's (dtype, device and shape follow
   * source), keeping this handle and its requiresGrad flag: how modules move parameters.
   */
  setData(source: Tensor): this {
    N.setData(this.handle, handleOf(source, 'source'));
    this._shape = undefined;
    return this;
  }
  detach(): Tensor {
    return Tensor._wrap(N.detach(this.handle));
  }

  // ---- display ----
  toString(): string {
    if (this._h < 0) return 'Tensor(disposed)';
    return `Tensor(${this.dtype}[${this.shape.join(', ')}], ${this.device})`;
  }
  [inspect.custom](): string {
    if (this._h < 0 || this.numel > 64) return this.toString();
    return `${this.toString().slice(0, -1)}, ${JSON.stringify(this.toArray())})`;
  }
}

function dimList(dims: number | readonly number[] | undefined): readonly number[] | undefined {
  if (dims === undefined) return undefined;
  if (typeof dims === 'number') return [checkInt(dims, 'dim')];
  return checkDims(dims, 'dims');
}

export { checkDims, checkInt, handleOf, describeValue };
