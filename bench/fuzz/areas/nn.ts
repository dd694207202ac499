// functional, autograd scopes and gradients, the fused MoE kernels, the optimizer and runtime settings.
import * as os from 'node:os';
import type { FuzzCase } from '../case';
import { lit } from '../literal';
import { DIM_INTS, DTYPES, FLOATS, NUMBERS, OTHER_VALUES, SIZES, smallShape, type DT } from '../pools';
import type { FuzzRng } from '../rng';
import { tensorOf } from './tensors';

function functional(r: FuzzRng): FuzzCase {
  const area = 'functional';
  const shape = r.array(r.int(1, 3), () => r.int(1, 4));
  const x = tensorOf(r, shape, r.pick([...FLOATS, 'float32', 'float32', r.pick(DTYPES)] as DT[]));
  const last = shape[shape.length - 1]!;
  const prob = () => (r.bool(0.7) ? r.pick([0, 0.1, 0.5, 1]) : r.pick(NUMBERS));
  const inUnit = (p: number) => p >= 0 && p <= 1;
  switch (r.int(0, 8)) {
    case 0: {
      const out = r.int(1, 3);
      const w = tensorOf(r, r.bool(0.8) ? [out, last] : smallShape(r), x.dtype).src;
      return { area, code: `sm.functional.linear(${x.src}, ${w}${r.bool() ? `, mk([${out}], ${lit(x.dtype)})` : ''});`, expect: 'any' };
    }
    case 1: {
      const eps = r.bool(0.7) ? 1e-5 : r.pick(NUMBERS);
      const norm = r.bool(0.8) ? [last] : r.array(r.int(0, 2), () => r.pick([...DIM_INTS, last]));
      const validEps = Number.isFinite(eps) && eps >= 0;
      return { area, code: `sm.functional.layerNorm(${x.src}, ${lit(norm)}, undefined, undefined, ${lit(eps)});`, expect: validEps ? 'any' : 'error' };
    }
    case 2:
      return { area, code: `sm.functional.${r.pick(['softmax', 'logSoftmax'])}(${x.src}, ${lit(r.bool(0.7) ? -1 : r.pick(DIM_INTS))});`, expect: 'any' };
    case 3: {
      const p = prob();
      return { area, code: `sm.functional.dropout(${x.src}, ${lit(p)}, ${lit(r.bool())});`, expect: inUnit(p) ? 'any' : 'error' };
    }
    case 4: {
      const classes = r.int(1, 4);
      const n = r.int(1, 3);
      const smoothing = r.bool(0.7) ? 0 : r.pick(NUMBERS);
      const outOfRange = r.bool(0.2);
      const target = outOfRange ? `sm.full([${n}], ${r.pick([-5, classes, 2 ** 40])}, { dtype: "int64" })` : `mkIndex([${n}], 0, ${classes})`;
      const reduction = r.bool(0.9) ? r.pick(['mean', 'sum', 'none']) : r.pick(['avg', '', 'MEAN']);
      const bad = !inUnit(smoothing) || !['mean', 'sum', 'none'].includes(reduction) || outOfRange;
      return { area, code: `sm.functional.crossEntropy(mk([${n}, ${classes}], ${lit(r.pick(FLOATS.slice(0, 2)))}), ${target}, { labelSmoothing: ${lit(smoothing)}, reduction: ${lit(reduction)} });`, expect: bad ? 'error' : 'ok' };
    }
    case 5:
      return { area, code: `sm.functional.mseLoss(${x.src}, ${tensorOf(r, r.bool(0.7) ? shape : smallShape(r), x.dtype).src}, ${lit(r.pick(['mean', 'sum', 'none', 'max']))});`, expect: 'any' };
    case 6:
      return { area, code: `sm.functional.oneHot(mkIndex(${lit(shape)}, ${r.pick([0, -2])}, ${r.int(1, 4)}), ${lit(r.bool(0.7) ? r.int(1, 5) : r.pick(SIZES))});`, expect: 'any' };
    case 7:
      return { area, code: `sm.functional.gelu(${x.src}, ${lit(r.bool(0.9) ? r.pick(['tanh', 'none']) : r.pick(['erf', '', 1]))});`, expect: 'any' };
    default: {
      const d = r.int(1, 4);
      const q = tensorOf(r, [1, r.int(1, 3), d], 'float32').src;
      const p = prob();
      return { area, code: `sm.functional.scaledDotProductAttention(${q}, ${q}, ${tensorOf(r, [1, r.int(1, 3), d], 'float32').src}, { dropout: ${lit(p)} });`, expect: inUnit(p) ? 'any' : 'error' };
    }
  }
}

function autograd(r: FuzzRng): FuzzCase {
  const area = 'autograd';
  const shape = smallShape(r, 2, 3);
  const x = tensorOf(r, shape, r.bool(0.8) ? 'float32' : r.pick(DTYPES));
  const floating = x.dtype.startsWith('float') || x.dtype.startsWith('complex') || x.dtype === 'bfloat16';
  switch (r.int(0, 6)) {
    case 0:
      return { area, code: `${x.src}.requiresGrad_(${lit(r.bool(0.9) ? true : r.pick(OTHER_VALUES))});`, expect: 'any' };
    case 1: {
      // backward of a non-scalar needs a gradient of exactly the output's shape.
      const gshape = r.bool(0.6) ? shape : smallShape(r, 2, 3);
      const same = gshape.length === shape.length && gshape.every((d, i) => d === shape[i]);
      const withGrad = r.bool(0.7);
      const scalarOut = shape.reduce((a, b) => a * b, 1) === 1;
      const expect = !floating ? 'any' : withGrad ? (same ? 'any' : 'error') : scalarOut ? 'any' : 'error';
      return { area, code: `const x = ${x.src}.requiresGrad_(); x.mul(2).backward(${withGrad ? `mk(${lit(gshape)})` : ''});`, expect };
    }
    case 2:
      return { area, code: `const x = ${x.src}; x.grad = ${r.bool() ? `mk(${lit(r.bool() ? shape : smallShape(r))}, ${lit(r.pick(DTYPES))})` : 'x'};`, expect: 'any' };
    case 3:
      return { area, code: `const x = ${x.src}.requiresGrad_(); x.setData(${tensorOf(r).src}); x.retainGrad(); x.detach(); x.zeroGrad();`, expect: 'any' };
    case 4:
      return { area, code: `sm.noGrad(() => sm.enableGrad(() => { ${r.bool() ? 'throw new Error("inside")' : `${x.src}.mul(2)`}; }));`, expect: 'any' };
    case 5: {
      const device = r.bool(0.8) ? r.pick(['cpu', 'cuda']) : r.pick(['tpu', 'CPU', 1]);
      const dtype = r.bool(0.8) ? r.pick(['bfloat16', 'float16']) : r.pick(['float32', 'int64', 'x']);
      const body = r.bool() ? 'throw new Error("inside autocast")' : `sm.functional.linear(mk([2, 3]), mk([4, 3])).sum()`;
      const valid = (device === 'cpu' || device === 'cuda') && (dtype === 'bfloat16' || dtype === 'float16');
      return { area, code: `sm.autocast(() => { ${body}; }, { device: ${lit(device)}, dtype: ${lit(dtype)}, enabled: ${lit(r.bool(0.9) ? r.bool() : 'yes')} });`, expect: valid ? 'any' : 'error' };
    }
    default:
      return { area, code: `const x = ${x.src}.requiresGrad_(); const y = x.mul(x).sum(); y.backward(undefined, { retainGraph: ${lit(r.bool())} }); y.backward();`, expect: 'any' };
  }
}

/** A routing, then dispatch/combine on its slot table, with one property broken about half the time. */
function moe(r: FuzzRng): FuzzCase {
  const area = 'moe';
  const G = r.int(1, 3), T = r.int(1, 8), E = r.int(1, 4), H = r.int(1, 4);
  const dtype = r.pick(['float32', 'float64', 'float16', 'bfloat16'] as DT[]);
  if (r.bool(0.3)) {
    const type = r.bool(0.9) ? r.pick(['experts_choose', 'tokens_choose']) : r.pick(['nobody', '']);
    const k = r.bool(0.8) ? r.int(1, E) : r.pick(DIM_INTS);
    const capacity = r.bool(0.8) ? r.int(1, T) : r.pick([0, -1, T + 1, 64, 1.5, NaN]);
    const probsShape = r.bool(0.85) ? [G, T, E] : smallShape(r);
    const probsType = r.bool(0.9) ? dtype : r.pick(['int64', 'bool', 'complex64'] as DT[]);
    const valid = ['experts_choose', 'tokens_choose'].includes(type) && probsShape.length === 3 && FLOATS.includes(probsType) && Number.isSafeInteger(k)
      && Number.isInteger(capacity) && capacity >= 1 && (type === 'tokens_choose' ? k >= 1 && k <= probsShape[2]! : capacity <= probsShape[1]!);
    return { area, code: `sm.fusedMoe.route(${FLOATS.includes(probsType) ? `sm.functional.softmax(mk(${lit(probsShape)}), -1).to(${lit(probsType)})` : `mk(${lit(probsShape)}, ${lit(probsType)})`}, ${lit(type)}, { k: ${lit(k)}, capacity: ${lit(capacity)} });`, expect: valid ? 'ok' : 'error' };
  }
  const C = r.int(1, T);
  const faults: string[] = [];
  const fault = (name: string) => (r.bool(0.12) ? (faults.push(name), true) : false);
  const slotShape = fault('slot shape') ? r.pick([[G, E], [G + 1, E, C], [G, E, C, 1]]) : [G, E, C];
  const slotType = fault('slot dtype') ? r.pick(['int32', 'float32']) : 'int64';
  const badSlot = fault('slot values') ? r.pick([T + 1, 2 ** 40, -1, -(2 ** 40)]) : undefined;
  const slots = slotType !== 'int64' ? `mk(${lit(slotShape)}, ${lit(slotType)})`
    : badSlot !== undefined ? `sm.full(${lit(slotShape)}, ${lit(badSlot)}, { dtype: "int64" })` : `mkIndex(${lit(slotShape)}, 0, ${T + 1})`;
  const xShape = fault('token shape') ? r.pick([[G, T], [G + 2, T, H]]) : [G, T, H]; // G + 2: never the bad slot table's G + 1
  const xType = fault('token dtype') ? r.pick(['int64', 'bool']) : dtype;
  const weightShape = fault('weight shape') ? r.pick([[1], [G, E], [G, E, C + 1], [G, E, C, 1]]) : [G, E, C];
  const yShape = fault('expert output shape') ? r.pick([[E, G * C + 1, H], [E + 1, G * C, H], [E, G * C]]) : [E, G * C, H];
  const tokens = fault('tokens per group') ? r.pick([-1, 1.5, NaN]) : T;
  const backward = r.bool(0.5);
  let code: string;
  if (r.bool(0.4)) {
    code = `const x = mk(${lit(xShape)}, ${lit(xType)})${backward && xType === dtype ? '.requiresGrad_()' : ''}; const out = sm.fusedMoe.dispatch(x, ${slots});`;
  } else {
    const wType = fault('weight dtype') ? r.pick(['int64', 'float64']) : 'float32';
    code = `const y = mk(${lit(yShape)}, ${lit(dtype)})${backward ? '.requiresGrad_()' : ''}; const w = mk(${lit(weightShape)}, ${lit(wType)})${backward && wType !== 'int64' ? '.requiresGrad_()' : ''}; const out = sm.fusedMoe.combine(y, ${slots}, w, ${lit(tokens)});`;
    if (faults.includes('weight dtype') && wType === 'float64') faults.splice(faults.indexOf('weight dtype'), 1); // float64 weights are converted: valid
  }
  if (backward) code += ' out.float().square().sum().backward();';
  const relevant = faults.filter((f) => !(code.includes('dispatch') && ['weight shape', 'expert output shape', 'tokens per group', 'weight dtype'].includes(f)) && !(code.includes('combine') && ['token shape', 'token dtype'].includes(f)));
  return { area, code, expect: relevant.length > 0 ? 'error' : 'ok' };
}

function optim(r: FuzzRng): FuzzCase {
  const area = 'optim';
  const hyper = {
    lr: r.bool(0.8) ? r.pick([0, 1e-3, 0.1]) : r.pick(NUMBERS),
    beta1: r.bool(0.8) ? r.pick([0, 0.9]) : r.pick([1, -0.1, NaN, 1.5, 0.999999]),
    beta2: r.bool(0.8) ? 0.999 : r.pick([1, -1, NaN, Infinity]),
    eps: r.bool(0.8) ? 1e-8 : r.pick([0, -1e-8, NaN, Infinity, 1]),
    weightDecay: r.bool(0.8) ? 0.01 : r.pick([-1, NaN, Infinity, 0]),
    step: r.bool(0.8) ? r.int(1, 5) : r.pick([0, -1, 1.5, NaN, 2 ** 53]),
  };
  const validHyper = Number.isFinite(hyper.lr) && hyper.lr >= 0 && hyper.beta1 >= 0 && hyper.beta1 < 1 && hyper.beta2 >= 0 && hyper.beta2 < 1 && Number.isFinite(hyper.eps) && hyper.eps > 0 && Number.isFinite(hyper.weightDecay) && hyper.weightDecay >= 0 && Number.isSafeInteger(hyper.step) && hyper.step >= 1;
  const shape = smallShape(r, 2, 3);
  const dtype = r.bool(0.8) ? 'float32' : r.pick(['float64', 'float16', 'bfloat16'] as DT[]);
  const mShape = r.bool(0.9) ? shape : smallShape(r, 2, 3);
  const mType = r.bool(0.9) ? dtype : r.pick(['float64', 'int64'] as DT[]);
  const sameM = mShape.join() === shape.join() && mType === dtype;
  switch (r.int(0, 3)) {
    case 0: {
      const alias = r.bool(0.1) && shape.reduce((a, b) => a * b, 1) > 0;
      return {
        area,
        code: `const p = mk(${lit(shape)}, ${lit(dtype)}).requiresGrad_(); p.float().sum().backward(); sm.optim.adamwStep([p], [${alias ? 'p' : `mk(${lit(mShape)}, ${lit(mType)})`}], [mk(${lit(shape)}, ${lit(dtype)}).abs()], [${lit(r.bool())}], ${lit(hyper)});`,
        // libtorch 1.13 has no CPU kernels of the multi-tensor ops for float16.
        expect: validHyper && sameM && !alias ? (dtype === 'float16' ? 'any' : 'ok') : 'error',
      };
    }
    case 1: {
      const maxNorm = r.bool(0.7) ? r.pick([0.5, 1, 10]) : r.pick(NUMBERS);
      return { area, code: `const p = mk(${lit(shape)}).requiresGrad_(); p.sum().backward(); sm.optim.clipGradNorm([p], ${lit(maxNorm)});`, expect: Number.isFinite(maxNorm) && maxNorm > 0 ? 'ok' : 'error' };
    }
    case 2:
      return { area, code: `const p = mk(${lit(shape)}).requiresGrad_(); ${r.bool() ? 'p.sum().backward(); ' : ''}sm.optim.gradNorm([p${r.bool(0.2) ? `, ${lit(r.pick(OTHER_VALUES))}` : ''}]);`, expect: 'any' };
    default: {
      const options = { beta1: hyper.beta1, beta2: hyper.beta2, eps: hyper.eps, weightDecay: hyper.weightDecay };
      const validOptions = options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1 && Number.isFinite(options.eps) && options.eps > 0 && Number.isFinite(options.weightDecay) && options.weightDecay >= 0;
      const lr = hyper.lr;
      return {
        area,
        code: `const layer = new sm.nn.Dense(sm.nn.initContext(1, 0.02), 3, 2); const opt = new sm.train.AdamW(layer, ${lit(options)}); try { layer.forward(mk([2, 3])).sum().backward(); opt.step(${lit(lr)}); } finally { opt.dispose(); layer.dispose(); }`,
        expect: validOptions && Number.isFinite(lr) && lr >= 0 ? 'ok' : 'error',
      };
    }
  }
}

function runtime(r: FuzzRng): FuzzCase {
  const area = 'runtime';
  const cpus = os.availableParallelism();
  switch (r.int(0, 3)) {
    case 0: {
      const n = r.bool(0.5) ? r.int(0, cpus + 2) : r.pick([...NUMBERS, 100000, 1e9]);
      return { area, code: `const before = sm.getNumThreads(); try { sm.setNumThreads(${lit(n)}); sm.ones([64, 64]).matmul(sm.ones([64, 64])); } finally { sm.setNumThreads(before); }`, expect: Number.isInteger(n) && n >= 1 && n <= cpus ? 'ok' : 'error' };
    }
    case 1:
      return { area, code: `sm.cuda.memoryStats(${lit(r.pick(DIM_INTS))});`, expect: 'any' };
    case 2:
      return { area, code: `sm.memory(); sm.nativeHeap(); sm.runtimeTuning(); sm.getNumThreads();`, expect: 'ok' };
    default:
      return { area, code: `sm.manualSeed(${lit(r.pick([0, 1, -1, 2 ** 53, 2 ** 64, 1.5, NaN]))});`, expect: 'any' };
  }
}

export const nnAreas = { functional, autograd, moe, optim, runtime };
