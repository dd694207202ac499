// Mixing kinds: FFT and matrix forms agree, structured matrices have the right structure, LINEAR
// is W_seq · x · W_hidden.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as sm from '../lib';
import { assertClose } from './helpers';

const n = 6;
const d = 4;

function mixing(kind: sm.MixingKind, useFft: boolean, dtype: sm.DType = 'float64'): sm.Mixing {
  const config = sm.modelConfig({ max_seq_length: n, d_model: d, d_emb: d, model_arch: kind, use_fft: useFft, num_heads: 2 });
  return new sm.Mixing(sm.nn.initContext(5, 0.3, dtype), kind, config);
}

const values = (t: sm.Tensor) => Array.from(t.dataSync() as Float64Array);

for (const kind of ['F_NET', 'H_NET', 'C_NET', 'T_NET'] as const) {
  test(`${kind}: FFT and explicit-matrix forms agree`, () => {
    sm.tidy(() => {
      const fft = mixing(kind, true);
      const matrix = mixing(kind, false); // same seed: same parameters
      const x = sm.randn([2, n, d], { generator: new sm.Generator(2), dtype: 'float64' });
      assertClose(values(fft.forward(x)), values(matrix.forward(x)), 1e-9);
      fft.dispose();
      matrix.dispose();
    });
  });
}

test('F_NET is the real part of the 2D DFT and H_NET its Hartley transform (by hand on one example)', () => {
  sm.tidy(() => {
    const x = sm.randn([1, n, d], { generator: new sm.Generator(4), dtype: 'float64' });
    const xs = values(x);
    const re: number[] = [];
    const im: number[] = [];
    for (let a = 0; a < n; a++)
      for (let b = 0; b < d; b++) {
        let r = 0;
        let i = 0;
        for (let j = 0; j < n; j++)
          for (let k = 0; k < d; k++) {
            const angle = -2 * Math.PI * ((a * j) / n + (b * k) / d);
            r += xs[j * d + k]! * Math.cos(angle);
            i += xs[j * d + k]! * Math.sin(angle);
          }
        re.push(r);
        im.push(i);
      }
    assertClose(values(mixing('F_NET', true).forward(x)), re, 1e-9);
    assertClose(values(mixing('H_NET', false).forward(x)), re.map((r, k) => r - im[k]!), 1e-9);
  });
});

test('circulant and Toeplitz matrices have the right structure', () => {
  sm.tidy(() => {
    const c = sm.tensor([1, 2, 3, 4], { dtype: 'float64' });
    const idx = sm.tensor(new Int32Array([0, 3, 2, 1, 1, 0, 3, 2, 2, 1, 0, 3, 3, 2, 1, 0]), { shape: [4, 4], dtype: 'int64' });
    // C[i][j] = c[(i - j) mod 4]: first column is c, each row is the previous one shifted right.
    assert.deepEqual(sm.circulant(c, idx).toArray(), [
      [1, 4, 3, 2],
      [2, 1, 4, 3],
      [3, 2, 1, 4],
      [4, 3, 2, 1],
    ]);
    // A T_NET layer's matrix form: T[i][j] = t[i - j + n - 1] is constant along diagonals.
    const m = mixing('T_NET', false);
    const seqVector = m.namedParameters().find(([name]) => name === 'seq_vector')![1];
    const t = values(seqVector);
    // Mixing an identity "sequence" column by column recovers T itself: x = e_j along the sequence.
    const eye = sm.eye(n, n, { dtype: 'float64' });
    const x = sm.stack(Array.from({ length: d }, (_, k) => (k === 0 ? eye : sm.zeros([n, n], { dtype: 'float64' }))), 2); // [n, n, d]
    const hidden = values(m.namedParameters().find(([name]) => name === 'hidden_vector')![1]);
    const out = values(m.forward(x)); // out[j][i][0] = T[i][j] · hidden-mix factor T_d[0][0] = t_d[d-1]
    for (let j = 0; j < n; j++)
      for (let i = 0; i < n; i++) assertClose([out[(j * n + i) * d]!], [t[i - j + n - 1]! * hidden[d - 1]!], 1e-9, `T[${i}][${j}]`);
    m.dispose();
  });
});

test('LINEAR equals W_seq · x · W_hidden', () => {
  sm.tidy(() => {
    const m = mixing('LINEAR', true);
    const params = Object.fromEntries(m.namedParameters());
    const ws = params['seq_kernel']!;
    const wh = params['hidden_kernel']!;
    assert.deepEqual(ws.shape, [n, n]);
    assert.deepEqual(wh.shape, [d, d]);
    const x = sm.randn([3, n, d], { generator: new sm.Generator(9), dtype: 'float64' });
    const expected = sm.stack([0, 1, 2].map((b) => ws.matmul(x.select(0, b)).matmul(wh)));
    assertClose(values(m.forward(x)), values(expected), 1e-12);
    m.dispose();
  });
});

test('mixing layers insist on inputs padded to max_seq_length', () => {
  sm.tidy(() => {
    const m = mixing('LINEAR', true);
    assert.throws(() => m.forward(sm.zeros([1, n - 1, d], { dtype: 'float64' })), /padded to max_seq_length: expected \[\*, 6, 4\], got \[1,5,4\]/);
    m.dispose();
  });
});
