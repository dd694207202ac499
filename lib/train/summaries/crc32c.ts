// CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), as TFRecord framing requires.
// Not the zlib CRC-32: TensorBoard rejects records checksummed with that polynomial.

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32C of `data` (strings are UTF-8 encoded); pass a previous result as `crc` to continue it. */
export function crc32c(data: Uint8Array | string, crc = 0): number {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** TFRecord's masked CRC: rotate right by 15 and add a constant, so CRCs of CRCs stay distinct. */
export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** Masked CRC-32C of `data`, the value stored in TFRecord framing. */
export function maskedCrc32c(data: Uint8Array | string): number {
  return maskCrc(crc32c(data));
}
