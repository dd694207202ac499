// Data types: names, the codes shared with the addon, and their JavaScript array types.

export const DTYPES = [
  'float32',
  'float64',
  'float16',
  'bfloat16',
  'int64',
  'int32',
  'bool',
  'complex64',
  'complex128',
  'uint8',
  'int8',
  'int16',
] as const;

export type DType = (typeof DTYPES)[number];

/** The addon's code for a dtype (its index in DTYPES; native/args.cc has the same table). */
export function dtypeCode(dtype: DType): number {
  const code = DTYPES.indexOf(dtype);
  if (code < 0) {
    throw new TypeError(`unknown dtype '${String(dtype)}'; expected one of ${DTYPES.join(', ')}`);
  }
  return code;
}

export function dtypeFromCode(code: number): DType {
  const dtype = DTYPES[code];
  if (dtype === undefined) throw new Error(`unknown dtype code ${code}`);
  return dtype;
}

export function isFloatingPoint(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'float16' || dtype === 'bfloat16';
}

export function isComplex(dtype: DType): boolean {
  return dtype === 'complex64' || dtype === 'complex128';
}

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Int8Array
  | Int16Array;

/**
 * What read-back returns for each dtype. float16/bfloat16 widen to Float32Array; complex values
 * come as interleaved (real, imaginary) pairs; bool is a Uint8Array of 0/1.
 */
export function viewAs(dtype: DType, buffer: ArrayBuffer): TypedArray {
  switch (dtype) {
    case 'float32':
    case 'float16':
    case 'bfloat16':
    case 'complex64':
      return new Float32Array(buffer);
    case 'float64':
    case 'complex128':
      return new Float64Array(buffer);
    case 'int64':
      return new BigInt64Array(buffer);
    case 'int32':
      return new Int32Array(buffer);
    case 'bool':
    case 'uint8':
      return new Uint8Array(buffer);
    case 'int8':
      return new Int8Array(buffer);
    case 'int16':
      return new Int16Array(buffer);
  }
}

/** The dtype whose memory layout a typed array has. */
export function dtypeOfTypedArray(data: ArrayBufferView): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Int16Array) return 'int16';
  throw new TypeError(`unsupported typed array ${data.constructor.name}`);
}
