// Token-mixing layers used in place of attention (REFERENCE §1): LINEAR, F_NET, H_NET, C_NET,
// T_NET. The Fourier-based kinds have an FFT form and an explicit-matrix form that agree.
import { Module } from '../nn/module';
import { normal, type InitContext } from '../nn/init';
import { cat, fftn, ifftn, tensor, type DType, type Tensor, zeros } from '../tensor';
import type { ModelArch, ModelConfig } from './config';

export type MixingKind = Exclude<ModelArch, 'BERT'>;

/** cos and sin of the DFT angles 2π·jk/n (angles reduced mod n first, for accuracy). */
function dftMatrices(n: number, dtype: DType): { cos: Tensor; sin: Tensor } {
  const c = new Float64Array(n * n);
  const s = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    for (let k = 0; k < n; k++) {
      const angle = (2 * Math.PI * ((j * k) % n)) / n;
      c[j * n + k] = Math.cos(angle);
      s[j * n + k] = Math.sin(angle);
    }
  }
  return { cos: tensor(c, { shape: [n, n], dtype }), sin: tensor(s, { shape: [n, n], dtype }) };
}

/** Index matrix idx[i][j] = f(i, j), int64 [n, n]. */
function indexMatrix(n: number, f: (i: number, j: number) => number): Tensor {
  const out = new Int32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[i * n + j] = f(i, j);
  return tensor(out, { shape: [n, n], dtype: 'int64' });
}

/**
 * A structured matrix M[i][j] = vector[index[i][j]]: circulant with index (i - j) mod n
 * (C[i][j] = c[(i - j) mod n]), Toeplitz with index i - j + n - 1 (T[i][j] = t[i - j + n - 1]).
 */
export function circulant(vector: Tensor, index: Tensor): Tensor {
  const n = index.shape[0]!;
  return vector.indexSelect(0, index.reshape([n * n])).reshape([n, n]);
}

/** FFTs run in float32, or float64 for float64 inputs (no half-precision FFT on the CPU). */
function fftDtype(x: Tensor): DType {
  return x.dtype === 'float64' ? 'float64' : 'float32';
}

/** out = A · x · Bᵀ for x [B, n, d], A [n, n], B [d, d]. */
function sandwich(a: Tensor, x: Tensor, b: Tensor): Tensor {
  return a.matmul(x).matmul(b.T);
}

export class Mixing extends Module {
  private readonly seq: number;
  private readonly hidden: number;
  private readonly useFft: boolean;
  private readonly weights: { seq?: Tensor; hidden?: Tensor } = {};
  private readonly dft: { seq?: { cos: Tensor; sin: Tensor }; hidden?: { cos: Tensor; sin: Tensor } } = {};
  private readonly index: { seq?: Tensor; hidden?: Tensor } = {};

  constructor(ctx: InitContext, readonly kind: MixingKind, config: ModelConfig) {
    super();
    const n = (this.seq = config.max_seq_length);
    const d = (this.hidden = config.d_model);
    this.useFft = config.use_fft;
    switch (kind) {
      case 'LINEAR':
        this.weights.seq = this.param('seq_kernel', normal(ctx, [n, n]));
        this.weights.hidden = this.param('hidden_kernel', normal(ctx, [d, d]));
        break;
      case 'F_NET':
      case 'H_NET':
        if (!this.useFft) {
          const ds = dftMatrices(n, ctx.dtype ?? 'float32');
          const dh = dftMatrices(d, ctx.dtype ?? 'float32');
          this.dft.seq = { cos: this.buffer('dft_seq_cos', ds.cos, false), sin: this.buffer('dft_seq_sin', ds.sin, false) };
          this.dft.hidden = { cos: this.buffer('dft_hidden_cos', dh.cos, false), sin: this.buffer('dft_hidden_sin', dh.sin, false) };
        }
        break;
      case 'C_NET':
        this.weights.seq = this.param('seq_vector', normal(ctx, [n]));
        this.weights.hidden = this.param('hidden_vector', normal(ctx, [d]));
        if (!this.useFft) {
          this.index.seq = this.buffer('seq_index', indexMatrix(n, (i, j) => (((i - j) % n) + n) % n), false);
          this.index.hidden = this.buffer('hidden_index', indexMatrix(d, (i, j) => (((i - j) % d) + d) % d), false);
        }
        break;
      case 'T_NET':
        this.weights.seq = this.param('seq_vector', normal(ctx, [2 * n - 1]));
        this.weights.hidden = this.param('hidden_vector', normal(ctx, [2 * d - 1]));
        if (!this.useFft) {
          this.index.seq = this.buffer('seq_index', indexMatrix(n, (i, j) => i - j + n - 1), false);
          this.index.hidden = this.buffer('hidden_index', indexMatrix(d, (i, j) => i - j + d - 1), false);
        }
        break;
    }
  }

  /** x [B, n, d] -> [B, n, d]. */
  forward(x: Tensor): Tensor {
    const [, n, d] = x.shape as [number, number, number];
    if (n !== this.seq || d !== this.hidden) {
      throw new Error(
        `${this.kind} mixing needs inputs padded to max_seq_length: expected [*, ${this.seq}, ${this.hidden}], got [${x.shape}]`,
      );
    }
    switch (this.kind) {
      case 'LINEAR':
        return sandwich(this.weights.seq!, x, this.weights.hidden!.T);
      case 'F_NET':
      case 'H_NET':
        return this.useFft ? this.fourierFft(x) : this.fourierMatrix(x);
      case 'C_NET':
      case 'T_NET':
        return this.useFft ? this.convolutionFft(x) : this.convolutionMatrix(x);
    }
  }

  private fourierFft(x: Tensor): Tensor {
    const y = fftn(x.to(fftDtype(x)), [1, 2]);
    const real = y.real();
    return (this.kind === 'F_NET' ? real : real.sub(y.imag())).to(x.dtype);
  }

  /** Re(F_n X F_d) = C X C - S X S; Im = -(C X S + S X C); Hartley = Re - Im. */
  private fourierMatrix(x: Tensor): Tensor {
    const { cos: cn, sin: sn } = this.dft.seq!;
    const { cos: cd, sin: sd } = this.dft.hidden!;
    const real = cn.matmul(x).matmul(cd).sub(sn.matmul(x).matmul(sd));
    if (this.kind === 'F_NET') return real;
    return real.add(cn.matmul(x).matmul(sd)).add(sn.matmul(x).matmul(cd));
  }

  /** Circular convolution along both axes; Toeplitz embeds into a circulant of size 2n-1. */
  private convolutionFft(x: Tensor): Tensor {
    const [B, n, d] = x.shape as [number, number, number];
    let cSeq = this.weights.seq!;
    let cHidden = this.weights.hidden!;
    let input = x.to(fftDtype(x));
    if (this.kind === 'T_NET') {
      // First column of the circulant that holds the Toeplitz matrix: t[n-1..2n-2] then t[0..n-2].
      cSeq = cat([cSeq.narrow(0, n - 1, n), cSeq.narrow(0, 0, n - 1)]);
      cHidden = cat([cHidden.narrow(0, d - 1, d), cHidden.narrow(0, 0, d - 1)]);
      input = cat([input, zeros([B, n - 1, d], { dtype: input.dtype, device: x.device })], 1);
      input = cat([input, zeros([B, 2 * n - 1, d - 1], { dtype: input.dtype, device: x.device })], 2);
    }
    const spectrum = fftn(cSeq, [0]).unsqueeze(1).mul(fftn(cHidden, [0]).unsqueeze(0)); // [n', d']
    const y = ifftn(fftn(input, [1, 2]).mul(spectrum), [1, 2]).real();
    return (this.kind === 'T_NET' ? y.narrow(1, 0, n).narrow(2, 0, d) : y).to(x.dtype);
  }

  private convolutionMatrix(x: Tensor): Tensor {
    const a = circulant(this.weights.seq!, this.index.seq!);
    const b = circulant(this.weights.hidden!, this.index.hidden!);
    return sandwich(a, x, b);
  }
}

/** Zeroes padded positions (ours: mask_padding_in_mixing). */
export function maskPadding(x: Tensor, inputIds: Tensor, padId: number): Tensor {
  return x.mul(inputIds.ne(padId).unsqueeze(2).to(x.dtype));
}

