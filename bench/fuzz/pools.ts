// Hostile and edge-case values the areas draw from, and what each dtype can hold (the oracle for
// conversions, written from the dtypes' definitions rather than from the library's own checks).
import type { FuzzRng } from './rng';

export const DTYPES = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'bool', 'complex64', 'complex128', 'uint8', 'int8', 'int16'] as const;
export type DT = (typeof DTYPES)[number];
export const FLOATS: readonly DT[] = ['float32', 'float64', 'float16', 'bfloat16'];
export const INTEGRALS: readonly DT[] = ['int64', 'int32', 'int16', 'int8', 'uint8'];
/** Dtypes that are not a DType at all. */
export const BAD_DTYPES = ['float8', 'int', 'Float32', '', 'complex32', 'uint64'];

export const NUMBERS = [0, 1, -1, 2, 3, 7, 0.5, -2.5, 1.5, -0, NaN, Infinity, -Infinity, 1e20, -1e20, 1e300, 255, 256, -129, 65504, 65536, 1e6, 2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 53, 2 ** 63, -(2 ** 63), 1e-300, 5e-324];
/** Integers for dims and indices: small, negative, past int32, fractional, not finite. */
export const DIM_INTS = [0, 1, 2, 3, -1, -2, -4, 5, 9, 2 ** 31, -(2 ** 31), 2 ** 53, 1.5, NaN, Infinity, -Infinity];
/** Sizes: small, or far too large to allocate (never in between: a fuzzer must not eat the machine's memory). */
export const SIZES = [0, 1, 2, 3, 4, -1, 2 ** 40, 2 ** 62, 1.5, NaN, Infinity];
/** Values of other types where a number, array or tensor is expected. */
export const OTHER_VALUES: unknown[] = [undefined, null, true, 'abc', '3', [], {}, [1, [2]], 1n];
export const DEVICES = ['cpu', 'meta', 'cuda', 'cuda:0', 'cuda:7', 'tpu', 'CPU', '', 'cuda:-1', 'cpu:0'];

/** Valid small shapes. */
export function smallShape(r: FuzzRng, maxRank = 3, maxDim = 4): number[] {
  return r.array(r.int(0, maxRank), () => r.int(0, maxDim) || (r.bool(0.8) ? 1 : 0));
}

/** A shape that may be hostile: mostly valid, sometimes negative, fractional, huge or not an array. */
export function anyShape(r: FuzzRng): unknown {
  if (r.bool(0.6)) return smallShape(r);
  if (r.bool(0.15)) return r.pick(OTHER_VALUES);
  return r.array(r.int(1, 3), () => (r.bool(0.5) ? r.int(0, 3) : r.pick(SIZES)));
}

export function isValidShape(shape: unknown, maxElements = 1 << 20): shape is number[] {
  if (!Array.isArray(shape)) return false;
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) return false;
    n *= d;
  }
  return n <= maxElements;
}

/** Whether JavaScript data converts to a dtype: exactly for integral dtypes, IEEE rounding for floating ones. */
export function fitsData(v: number | boolean, dtype: DT): boolean {
  return FLOATS.includes(dtype) || dtype.startsWith('complex') || fits(v, dtype);
}

/**
 * Whether a scalar is storable in a dtype (fills): integral dtypes take finite values whose integer
 * part (fractions truncate, as in torch) is in range, bool anything but NaN, floats what does not
 * overflow to infinity.
 */
export function fits(v: number | boolean, dtype: DT): boolean {
  if (typeof v === 'boolean') return true;
  const t = Math.trunc(v);
  switch (dtype) {
    case 'bool':
      return !Number.isNaN(v);
    case 'uint8':
      return Number.isFinite(v) && t >= 0 && t <= 255;
    case 'int8':
      return Number.isFinite(v) && t >= -128 && t <= 127;
    case 'int16':
      return Number.isFinite(v) && t >= -32768 && t <= 32767;
    case 'int32':
      return Number.isFinite(v) && t >= -(2 ** 31) && t < 2 ** 31;
    case 'int64':
      return Number.isFinite(v) && t >= -(2 ** 63) && t < 2 ** 63;
    case 'float16':
      return !Number.isFinite(v) || Math.abs(v) < 65520;
    case 'bfloat16':
      return !Number.isFinite(v) || Math.abs(v) < 3.3961e38;
    case 'float32':
    case 'complex64':
      return !Number.isFinite(v) || Math.abs(v) < 3.4028235e38;
    default:
      return true;
  }
}

/** A string meant to upset parsers and terminals: control characters, lone surrogates, NUL, long runs. */
export function hostileString(r: FuzzRng): string {
  const pieces = ['abc', ' ', '\t', '\n', '\r\n', '\u0000', '\u001b[31m', '\u009b', '\u202e', '\ud800', '\udc00', 'é', '😀', '"', "'", '\\', '{', '[CLS]', '<br>', '\u2028'];
  const n = r.int(0, 6);
  let s = '';
  for (let i = 0; i < n; i++) s += r.pick(pieces);
  if (r.bool(0.05)) s += 'x'.repeat(r.pick([1000, 70000]));
  return s;
}
