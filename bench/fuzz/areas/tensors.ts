// Tensor creation, element-wise ops, views and indexing, reductions and products, read-back.
import type { FuzzCase } from '../case';
import { lit } from '../literal';
import { anyShape, BAD_DTYPES, DEVICES, DIM_INTS, DTYPES, fits, fitsData, FLOATS, INTEGRALS, isValidShape, NUMBERS, OTHER_VALUES, SIZES, smallShape, type DT } from '../pools';
import type { FuzzRng } from '../rng';

export interface TensorSource {
  src: string;
  shape: number[];
  dtype: DT;
}

/** A valid tensor expression (mk) of a random small shape and dtype. */
export function tensorOf(r: FuzzRng, shape = smallShape(r), dtype: DT = r.pick(DTYPES)): TensorSource {
  return { src: `mk(${lit(shape)}, ${lit(dtype)}, ${r.int(0, 999)})`, shape, dtype };
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function creation(r: FuzzRng): FuzzCase {
  const area = 'tensor.create';
  const dtypeChoice = (): string | undefined => (r.bool(0.2) ? undefined : r.bool(0.9) ? r.pick(DTYPES) : r.pick(BAD_DTYPES));
  switch (r.int(0, 6)) {
    case 0: {
      // From nested arrays: every value must fit the dtype, or the call must fail.
      const dtype = dtypeChoice();
      const booleans = r.bool(0.1);
      const values = r.array(r.int(0, 5), () => (booleans ? r.bool() : r.bool(0.7) ? r.int(-3, 3) : r.pick(NUMBERS)));
      const inferred: DT = booleans && values.length > 0 ? 'bool' : values.length > 0 && values.every((v) => Number.isSafeInteger(v)) ? 'int64' : 'float32';
      const target = (dtype ?? inferred) as DT;
      const valid = (dtype === undefined || (DTYPES as readonly string[]).includes(dtype)) && values.every((v) => fitsData(v as number, target));
      const options = dtype === undefined ? '' : `, { dtype: ${lit(dtype)} }`;
      return { area, code: `sm.tensor(${lit(values)}${options}).dataSync();`, expect: valid ? 'ok' : 'error' };
    }
    case 1: {
      // From typed arrays into another dtype.
      const kinds = ['Float64Array', 'Float32Array', 'Int32Array', 'Uint8Array', 'Int16Array', 'Int8Array'] as const;
      const kind = r.pick(kinds);
      const values = r.array(r.int(0, 4), () => (r.bool(0.6) ? r.int(-3, 3) : r.pick(NUMBERS)));
      const stored = Array.from(new globalThis[kind](values));
      const dtype = r.pick(DTYPES);
      const valid = stored.every((v) => fitsData(v, dtype));
      return { area, code: `sm.tensor(${kind}.from(${lit(values)}), { dtype: ${lit(dtype)} }).dataSync();`, expect: valid ? 'ok' : 'error' };
    }
    case 2: {
      const fn = r.pick(['zeros', 'ones', 'empty', 'rand', 'randn']);
      const shape = anyShape(r);
      const dtype = dtypeChoice();
      const device = r.bool(0.8) ? undefined : r.pick(DEVICES);
      const validDtype = dtype === undefined || ((DTYPES as readonly string[]).includes(dtype) && (!fn.startsWith('rand') || FLOATS.includes(dtype as DT) || dtype.startsWith('complex')));
      const validDevice = device === undefined || device === 'cpu' || device === 'meta';
      // A meta tensor has no memory: any size that does not overflow is fine there.
      const expect = !isValidShape(shape, device === 'meta' ? 2 ** 53 : undefined) || (dtype !== undefined && !(DTYPES as readonly string[]).includes(dtype)) || !(device === undefined || /^(cpu|meta|cuda(:\d+)?)$/.test(device))
        ? device === 'meta' && isValidShape(shape, Infinity) ? 'any' : 'error'
        : validDtype && validDevice ? 'ok' : 'any';
      return { area, code: `sm.${fn}(${lit(shape)}, ${lit({ dtype, device })});`, expect };
    }
    case 3: {
      const shape = r.bool(0.8) ? smallShape(r) : anyShape(r);
      const value = r.bool(0.1) ? r.pick(OTHER_VALUES) : r.bool(0.5) ? r.int(-3, 3) : r.pick(NUMBERS);
      const dtype = dtypeChoice();
      let expect: FuzzCase['expect'] = 'any';
      if (!isValidShape(shape) || (typeof value !== 'number' && typeof value !== 'boolean') || (dtype !== undefined && !(DTYPES as readonly string[]).includes(dtype))) expect = 'error';
      else if (dtype !== undefined) expect = fits(value as number | boolean, dtype as DT) ? 'ok' : 'error';
      return { area, code: `sm.full(${lit(shape)}, ${lit(value)}${dtype === undefined ? '' : `, { dtype: ${lit(dtype)} }`});`, expect };
    }
    case 4: {
      const args = r.array(r.int(1, 3), () => (r.bool(0.6) ? r.int(-5, 8) : r.pick(NUMBERS)));
      const dtype = dtypeChoice();
      const [a, b, c] = args as number[];
      const [start, end, step] = b === undefined ? [0, a!, 1] : [a!, b, c ?? 1];
      const count = (end - start) / step;
      // An infinite step is one element (as in numpy); infinite bounds or a zero step are not a range.
      const sane = Number.isFinite(start) && Number.isFinite(end) && !Number.isNaN(step) && step !== 0 && Math.abs(count) < 1e6;
      // Huge ranges would allocate: only small ones run; the rest must be refused or stay small.
      if (!sane && Number.isFinite(count) && Math.abs(count) >= 1e6) return creation(r);
      return { area, code: `sm.arange(${args.map(lit).join(', ')}${dtype === undefined ? '' : `${', undefined'.repeat(3 - args.length)}, { dtype: ${lit(dtype)} }`});`, expect: sane ? 'any' : 'error' };
    }
    case 5: {
      const fn = r.pick(['eye', 'randperm', 'randint']);
      const ints = r.array(3, () => (r.bool(0.6) ? r.int(-2, 6) : r.pick(SIZES)));
      if (fn === 'eye') return { area, code: `sm.eye(${lit(ints[0])}, ${lit(ints[1])});`, expect: ints.slice(0, 2).every((n) => Number.isInteger(n) && n >= 0 && n <= 64) ? 'ok' : ints.slice(0, 2).some((n) => !Number.isInteger(n) || n < 0) ? 'error' : 'any' };
      if (fn === 'randperm') return { area, code: `sm.randperm(${lit(ints[0])});`, expect: Number.isInteger(ints[0]) && ints[0]! >= 0 && ints[0]! < 1e6 ? 'ok' : ints[0]! < 0 || !Number.isInteger(ints[0]) ? 'error' : 'any' };
      const dtype = r.pick([...INTEGRALS, 'bool', 'float32'] as DT[]);
      const [low, high] = ints as [number, number];
      const valid = Number.isSafeInteger(low) && Number.isSafeInteger(high) && low < high && (dtype === 'bool' ? low >= 0 && high <= 2 : fits(low, dtype) && fits(high - 1, dtype));
      return { area, code: `sm.randint(${lit(low)}, ${lit(high)}, [3], { dtype: ${lit(dtype)} });`, expect: valid ? 'ok' : !Number.isInteger(low) || !Number.isInteger(high) || low >= high ? 'error' : 'any' };
    }
    default: {
      const seed = r.pick([0, 1, -1, 2 ** 40, 2 ** 53, 2 ** 64, 1.5, NaN, 'x']);
      const valid = Number.isSafeInteger(seed);
      return r.bool()
        ? { area, code: `const g = new sm.Generator(${lit(seed)}); sm.randn([2], { generator: g }); g.dispose();`, expect: valid ? 'ok' : 'error' }
        : { area, code: `sm.setRngState(${r.bool() ? `mk([${r.pick([0, 3, 5056, 5048])}], "uint8")` : 'mk([5056])'});`, expect: 'any' };
    }
  }
}

const UNARY = ['neg', 'abs', 'exp', 'log', 'log1p', 'sqrt', 'rsqrt', 'tanh', 'sigmoid', 'relu', 'sin', 'cos', 'square', 'reciprocal', 'floor', 'ceil', 'round', 'sign', 'erf', 'logicalNot', 'isfinite', 'isnan', 'real', 'imag', 'clone', 'contiguous', 'detach', 'float', 'long', 'all', 'any', 'max', 'min'];
const BINARY = ['add', 'sub', 'mul', 'div', 'pow', 'remainder', 'maximum', 'minimum', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'logicalAnd', 'logicalOr', 'matmul', 'bmm'];
const SCALAR = ['add', 'sub', 'mul', 'div', 'pow', 'remainder', 'eq', 'ne', 'lt', 'le', 'gt', 'ge', 'rsub', 'rdiv'];
/** Scalar ops whose result keeps an integral tensor's dtype for an integral scalar (so the scalar must fit it). */
const KEEPS_DTYPE = ['add', 'sub', 'mul', 'rsub', 'remainder', 'eq', 'ne', 'lt', 'le', 'gt', 'ge'];

function elementwise(r: FuzzRng): FuzzCase {
  const area = 'tensor.ops';
  const a = tensorOf(r);
  switch (r.int(0, 4)) {
    case 0:
      return { area, code: `${a.src}.${r.pick(UNARY)}();`, expect: 'any' };
    case 1: {
      const b = r.bool(0.5) ? tensorOf(r, a.shape) : tensorOf(r);
      return { area, code: `${a.src}.${r.pick(BINARY)}(${r.bool(0.05) ? lit(r.pick(OTHER_VALUES)) : b.src});`, expect: 'any' };
    }
    case 2: {
      const op = r.pick(SCALAR);
      const s = r.bool(0.5) ? r.int(-3, 3) : r.pick(NUMBERS);
      // An integral tensor and an integral scalar keep the tensor's dtype: the scalar must fit it.
      const wraps = INTEGRALS.includes(a.dtype) && Number.isSafeInteger(s) && KEEPS_DTYPE.includes(op) && !fits(s, a.dtype);
      return { area, code: `${a.src}.${op}(${lit(s)});`, expect: wraps ? 'error' : 'any' };
    }
    case 3: {
      const target = a.src;
      const op = r.pick(['addInPlace', 'mulInPlace', 'copyFrom', 'zeroInPlace', 'fillInPlace', 'maskedFillInPlace', 'clamp', 'addcmul']);
      const value = r.bool(0.5) ? r.int(-3, 3) : r.pick(NUMBERS);
      const b = tensorOf(r, r.bool(0.7) ? a.shape : smallShape(r));
      switch (op) {
        case 'fillInPlace':
          return { area, code: `${target}.fillInPlace(${lit(value)});`, expect: a.dtype.startsWith('complex') ? 'any' : fits(value, a.dtype) ? 'ok' : 'error' };
        case 'maskedFillInPlace':
          return { area, code: `${target}.maskedFillInPlace(mk(${lit(a.shape)}, "bool"), ${lit(value)});`, expect: a.dtype.startsWith('complex') ? 'any' : fits(value, a.dtype) ? 'ok' : 'error' };
        case 'clamp':
          return { area, code: `${target}.clamp(${lit(r.bool() ? undefined : value)}, ${lit(r.bool() ? undefined : r.pick(NUMBERS))});`, expect: 'any' };
        case 'addcmul':
          return { area, code: `${target}.addcmul(${b.src}, ${tensorOf(r, a.shape).src}, ${lit(value)});`, expect: 'any' };
        case 'zeroInPlace':
          return { area, code: `${target}.zeroInPlace();`, expect: 'ok' };
        default:
          return { area, code: `${target}.${op}(${op === 'mulInPlace' && r.bool() ? lit(value) : b.src});`, expect: 'any' };
      }
    }
    default: {
      const ts = r.array(r.int(0, 3), () => (r.bool(0.6) ? tensorOf(r, a.shape).src : tensorOf(r).src));
      const fn = r.pick(['cat', 'stack', 'where', 'einsum']);
      if (fn === 'einsum') {
        const eq = r.array(r.int(0, 8), () => r.pick(['i', 'j', 'k', ',', '->', '.', ' ', '...', 'A', '1'])).join('');
        return { area, code: `sm.einsum(${lit(eq)}, ${ts.join(', ')});`, expect: 'any' };
      }
      if (fn === 'where') return { area, code: `sm.where(mk(${lit(a.shape)}, "bool"), ${a.src}, ${ts[0] ?? a.src});`, expect: 'any' };
      return { area, code: `sm.${fn}([${ts.join(', ')}], ${lit(r.pick(DIM_INTS))});`, expect: 'any' };
    }
  }
}

function views(r: FuzzRng): FuzzCase {
  const area = 'tensor.views';
  const a = tensorOf(r, smallShape(r, 4, 4));
  const d = () => (r.bool(0.7) ? r.int(-a.shape.length - 1, a.shape.length) : r.pick(DIM_INTS));
  const dims = () => r.array(r.int(0, 4), d);
  const op = r.pick(['reshape', 'view', 'transpose', 'permute', 'narrow', 'slice', 'select', 'squeeze', 'unsqueeze', 'expand', 'repeat', 'flatten', 'tril', 'triu', 'flip', 'roll', 'split', 'chunk', 'size', 'to']);
  switch (op) {
    case 'reshape':
    case 'view':
      return { area, code: `${a.src}.${op}(${lit(r.bool(0.3) ? [numel(a.shape)] : r.array(r.int(0, 3), () => r.pick([...DIM_INTS, 1, 2, -1])))});`, expect: 'any' };
    case 'expand':
      // Views only: expand never allocates, so any size is safe to ask for.
      return { area, code: `${a.src}.expand(${lit(r.array(r.int(0, 4), () => r.pick([-1, 1, 2, 3, 2 ** 40, 1.5])))});`, expect: 'any' };
    case 'repeat':
      return { area, code: `${a.src}.repeat(${lit(r.array(r.int(0, 4), () => r.pick([0, 1, 2, 3, -1, 2 ** 40, 2 ** 62, 1.5])))});`, expect: 'any' };
    case 'permute':
    case 'flip':
      return { area, code: `${a.src}.${op}(${lit(dims())});`, expect: 'any' };
    case 'roll':
      return { area, code: `${a.src}.roll(${lit(dims())}, ${lit(dims())});`, expect: 'any' };
    case 'split':
      return { area, code: `${a.src}.split(${lit(r.bool() ? r.pick(DIM_INTS) : dims())}, ${lit(d())});`, expect: 'any' };
    case 'to':
      return { area, code: `${a.src}.to(${lit(r.pick([...DTYPES, ...DEVICES, ...BAD_DTYPES, 5]))});`, expect: 'any' };
    case 'narrow':
      return { area, code: `${a.src}.narrow(${lit(d())}, ${lit(d())}, ${lit(d())});`, expect: 'any' };
    case 'slice':
      return { area, code: `${a.src}.slice(${lit(d())}, ${lit(r.bool() ? undefined : d())}, ${lit(r.bool() ? undefined : d())}, ${lit(r.pick([1, 2, 0, -1, 1.5]))});`, expect: 'any' };
    default:
      return { area, code: `${a.src}.${op}(${lit(d())}${op === 'transpose' || op === 'select' || op === 'chunk' ? `, ${lit(d())}` : ''});`, expect: 'any' };
  }
}

function indexing(r: FuzzRng): FuzzCase {
  const area = 'tensor.index';
  const shape = r.array(r.int(1, 3), () => r.int(1, 4));
  const a = tensorOf(r, shape, r.pick(['float32', 'float64', 'int64', 'int32', 'bool', 'float16']));
  const dim = r.bool(0.85) ? r.int(0, shape.length - 1) : r.pick(DIM_INTS);
  const validDim = Number.isInteger(dim) && dim >= -shape.length && dim < shape.length;
  const size = validDim ? shape[dim < 0 ? dim + shape.length : dim]! : 1;
  const outOfRange = r.bool(0.3);
  const lo = outOfRange ? r.pick([-size - 3, size, size + 5, -(2 ** 40)]) : 0;
  const hi = outOfRange ? lo + 1 : size;
  const op = r.pick(['indexSelect', 'gather', 'scatter', 'scatterAdd', 'indexAdd', 'embedding', 'maskedFill']);
  // Now and then an index tensor of another dtype, with values anywhere: then either outcome is fine.
  const wrongType = r.bool(0.1);
  const index = (s: readonly number[]) => (wrongType ? `mk(${lit(s)}, ${lit(r.pick(['int32', 'float32']))})` : `mkIndex(${lit(s)}, ${lo}, ${hi})`);
  const outOfRangeIndex = outOfRange && !wrongType;
  const k = r.int(1, 3);
  switch (op) {
    case 'indexSelect':
      return { area, code: `${a.src}.indexSelect(${lit(dim)}, ${index([k])});`, expect: outOfRangeIndex && validDim ? 'error' : 'any' };
    case 'gather':
    case 'scatter':
    case 'scatterAdd': {
      const idxShape = shape.map((s) => Math.min(s, r.int(1, 2)));
      const src = op === 'gather' ? '' : `, ${tensorOf(r, idxShape, a.dtype).src}`;
      return { area, code: `${a.src}.${op}(${lit(dim)}, ${index(idxShape)}${src});`, expect: outOfRangeIndex && validDim ? 'error' : 'any' };
    }
    case 'indexAdd': {
      const srcShape = [...shape];
      if (validDim) srcShape[(dim as number) < 0 ? (dim as number) + shape.length : (dim as number)] = k;
      return { area, code: `${a.src}.indexAdd(${lit(dim)}, ${index([k])}, ${tensorOf(r, srcShape, a.dtype).src});`, expect: outOfRangeIndex && validDim ? 'error' : 'any' };
    }
    case 'embedding':
      return { area, code: `sm.functional.embedding(mk(${lit([size, 3])}), ${index([k])}, ${lit(r.pick([-1, 0, 1, size + 3, 1.5]))});`, expect: outOfRangeIndex ? 'error' : 'any' };
    default: {
      const value = r.bool() ? r.int(-3, 3) : r.pick(NUMBERS);
      return { area, code: `${a.src}.maskedFill(mk(${lit(shape)}, "bool"), ${lit(value)});`, expect: fits(value, a.dtype) ? 'ok' : 'error' };
    }
  }
}

function reductions(r: FuzzRng): FuzzCase {
  const area = 'tensor.reduce';
  const a = tensorOf(r, smallShape(r, 3, 4));
  const d = () => (r.bool(0.7) ? r.int(-a.shape.length, a.shape.length) : r.pick(DIM_INTS));
  const op = r.pick(['sum', 'mean', 'prod', 'var', 'maxAlong', 'minAlong', 'argmax', 'argmin', 'logsumexp', 'topk', 'sort', 'argsort', 'cumsum', 'norm', 'fftn', 'ifftn', 'dataSync', 'item', 'toArray', 'data']);
  switch (op) {
    case 'sum':
    case 'mean':
      return { area, code: `${a.src}.${op}(${lit(r.bool() ? d() : r.array(r.int(0, 3), d))}, ${lit(r.bool())}${r.bool(0.3) ? `, ${lit(r.pick([...DTYPES, ...BAD_DTYPES]))}` : ''});`, expect: 'any' };
    case 'var':
    case 'logsumexp':
      return { area, code: `${a.src}.${op}(${lit(r.array(r.int(0, 3), d))});`, expect: 'any' };
    case 'topk':
      return { area, code: `${a.src}.topk(${lit(r.bool() ? r.int(0, 4) : r.pick(DIM_INTS))}, ${lit(d())}, ${lit(r.bool())}, ${lit(r.bool())});`, expect: 'any' };
    case 'cumsum':
      return { area, code: `${a.src}.cumsum(${lit(d())}${r.bool(0.3) ? `, ${lit(r.pick(DTYPES))}` : ''});`, expect: 'any' };
    case 'norm':
      return { area, code: `${a.src}.norm(${lit(r.pick([1, 2, 0, -1, Infinity, NaN, 0.5]))});`, expect: 'any' };
    case 'fftn':
    case 'ifftn':
      return { area, code: `sm.${op}(${a.src}, ${lit(r.array(r.int(0, 3), d))});`, expect: 'any' };
    case 'data':
      return { area, code: `const t = ${a.src}; try { await t.data(); } finally { t.dispose(); }`, expect: 'any', async: true };
    case 'dataSync':
    case 'toArray':
      return { area, code: `${a.src}.${op}();`, expect: 'ok' };
    case 'item':
      return { area, code: `${a.src}.item();`, expect: numel(a.shape) === 1 && !a.dtype.startsWith('complex') ? 'ok' : 'error' };
    default:
      return { area, code: `${a.src}.${op}(${lit(d())}${r.bool() ? `, ${lit(r.bool())}` : ''});`, expect: 'any' };
  }
}

export const tensorAreas = { creation, elementwise, views, indexing, reductions };
