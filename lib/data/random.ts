// A small seeded random-number generator whose whole state is four 32-bit words, so it can be
// saved in a checkpoint and restored exactly (xoshiro128**, seeded through splitmix32).

export type RngState = [number, number, number, number];

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Rng {
  private s: Uint32Array;

  constructor(seed: number | RngState) {
    if (typeof seed === 'number') {
      if (!Number.isInteger(seed)) throw new TypeError(`Rng seed must be an integer, got ${seed}`);
      const next = splitmix32(seed ^ Math.floor(seed / 2 ** 32));
      this.s = Uint32Array.from([next(), next(), next(), next()]);
    } else {
      // Uint32Array.from would take 1.5 as 1 and -1 as 2^32 - 1: a state that was never saved.
      if (!Array.isArray(seed) || seed.length !== 4 || !seed.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32)) {
        throw new TypeError('Rng state must be four 32-bit unsigned integers');
      }
      this.s = Uint32Array.from(seed);
    }
    if (this.s.every((w) => w === 0)) this.s[0] = 1; // the all-zero state is a fixed point
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform on [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer on [low, high). */
  int(low: number, high: number): number {
    if (!(high > low)) throw new RangeError(`Rng.int: empty range [${low}, ${high})`);
    return low + Math.floor(this.next() * (high - low));
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }

  getState(): RngState {
    return [this.s[0]!, this.s[1]!, this.s[2]!, this.s[3]!];
  }

  setState(state: RngState): void {
    this.s = Uint32Array.from(state);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** A stable 32-bit hash of a string (FNV-1a), e.g. to assign documents to splits. */
export function hash32(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
