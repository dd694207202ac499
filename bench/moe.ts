// `sparse-mixer bench moe`: the MoE layer's dispatch and combine, fused against masked, next to the
// expert GEMMs they feed, at Sparse Mixer base shapes and a small shape, in one run.
import * as sm from '../lib';
import { timeInterleaved } from './timing';

const F = sm.functional;

export interface MoeShape {
  name: string;
  batch: number;
  length: number;
  hidden: number;
  experts: number;
  dFF: number;
  capacityFactor: number;
}

export const MOE_SHAPES: MoeShape[] = [
  { name: 'base cf=1.0', batch: 8, length: 512, hidden: 512, experts: 16, dFF: 2048, capacityFactor: 1.0 },
  { name: 'base cf=0.5', batch: 8, length: 512, hidden: 512, experts: 16, dFF: 2048, capacityFactor: 0.5 },
  { name: 'small cf=1.0', batch: 8, length: 128, hidden: 128, experts: 16, dFF: 512, capacityFactor: 1.0 },
];

export interface MoeResult {
  shape: string;
  impl: 'masked' | 'fused' | 'expert_gemms';
  /** 'dispatch_combine': routing + dispatch + combine with identity experts; 'layer': the whole MoE layer. */
  part: 'dispatch_combine' | 'layer';
  pass: 'forward' | 'forward_backward';
  ms: number;
}

/** Bytes an op must move through memory, over its time; of_copy: the share of a plain copy's rate. */
export interface BandwidthResult {
  op: 'copy' | 'dispatch' | 'combine';
  bytes: number;
  ms: number;
  gb_per_s: number;
  of_copy: number;
}

export interface MoeBenchReport {
  results: MoeResult[];
  ratios: Record<string, number>;
  bandwidth: { tokens: number; hidden: number; experts: number; capacity: number; dtype: string; results: BandwidthResult[] };
  training_step?: { preset: string; batch: string; fused_ms: number; masked_ms: number; speedup: number };
  threads: number;
  device: string;
}

function layerFor(shape: MoeShape, impl: 'masked' | 'fused', device: sm.Device, dtype: sm.DType): sm.MoeLayer {
  const config = sm.modelConfig({
    d_model: shape.hidden,
    d_emb: shape.hidden,
    d_ff: shape.dFF,
    num_experts: shape.experts,
    max_seq_length: shape.length,
    train_capacity_factor: shape.capacityFactor,
    eval_capacity_factor: shape.capacityFactor,
    expert_dropout_rate: 0,
    dispatch_impl: impl,
  });
  return new sm.MoeLayer(sm.nn.initContext(0, 0.02, dtype, device), config);
}

/**
 * Fused dispatch and combine alone (routing done beforehand), at Sparse Mixer base widths over
 * `tokens` tokens, as memory bandwidth: the bytes each must read and write over its time, against a
 * plain device copy in the same run (the practical ceiling). Each timing covers `inner` calls and
 * one synchronisation, so that launch latency and the sync do not dominate on a GPU.
 */
export function dispatchCombineBandwidth(options: { device: sm.Device; dtype: sm.DType; tokens: number; repeats: number; inner: number }): MoeBenchReport['bandwidth'] {
  const [H, E, T] = [512, 16, Math.min(4096, options.tokens)];
  if (options.tokens % T !== 0) throw new Error(`tokens must be a multiple of ${T}, got ${options.tokens}`);
  const G = options.tokens / T;
  const C = T / E; // experts-choose at capacity factor 1.0
  const elt = options.dtype === 'float32' ? 4 : options.dtype === 'float64' ? 8 : 2;
  const { device, dtype } = options;
  const g = new sm.Generator(5);
  try {
    return sm.tidy(() => {
      const x = sm.randn([G, T, H], { generator: g, device, dtype });
      const r = sm.fusedMoe.route(F.softmax(sm.randn([G, T, E], { generator: g, device }), -1), 'experts_choose', { capacity: C });
      const weight = sm.rand([G, E, C], { generator: g, device }).to(dtype);
      const y = sm.randn([E, G * C, H], { generator: g, device, dtype });
      const rows = E * G * C * H * elt; // the expert-side buffer, [E, G·C, H]
      const table = E * G * C * 8; // int64 slot table
      const ops: Record<BandwidthResult['op'], { bytes: number; run: () => sm.Tensor }> = {
        copy: { bytes: 2 * rows, run: () => y.clone() },
        dispatch: { bytes: 2 * rows + table, run: () => sm.fusedMoe.dispatch(x, r.slotToken) },
        combine: { bytes: rows + G * T * H * elt + table + E * G * C * 4, run: () => sm.fusedMoe.combine(y, r.slotToken, weight, T) },
      };
      const fns = Object.fromEntries(
        Object.entries(ops).map(([name, op]) => [
          name,
          () => {
            for (let i = 0; i < options.inner; i++) sm.tidy(() => void op.run());
            sm.cuda.synchronize();
          },
        ]),
      );
      const ms = timeInterleaved(fns, options.repeats);
      const rate = (name: BandwidthResult['op']) => ops[name].bytes / ((ms[name]! / options.inner) * 1e-3) / 1e9;
      const results = (Object.keys(ops) as BandwidthResult['op'][]).map((op) => ({
        op,
        bytes: ops[op].bytes,
        ms: ms[op]! / options.inner,
        gb_per_s: rate(op),
        of_copy: rate(op) / rate('copy'),
      }));
      return { tokens: options.tokens, hidden: H, experts: E, capacity: C, dtype, results };
    });
  } finally {
    g.dispose();
  }
}

export function benchMoe(options: { repeats: number; device: sm.Device; dtype: sm.DType; shapes?: string[]; batchSize?: number; trainingStep: boolean; bandwidthTokens?: number; log: (s: string) => void }): MoeBenchReport {
  const results: MoeResult[] = [];
  const ratios: Record<string, number> = {};
  const shapes = MOE_SHAPES.filter((s) => !options.shapes || options.shapes.includes(s.name)).map((s) => ({ ...s, batch: options.batchSize ?? s.batch }));
  const record = (r: MoeResult) => {
    results.push(r);
    options.log(`${r.shape.padEnd(14)} ${r.part.padEnd(17)} ${r.impl.padEnd(13)} ${r.pass.padEnd(17)} ${r.ms.toFixed(2).padStart(10)} ms`);
  };
  for (const shape of shapes) {
    const x = sm.keep(sm.randn([shape.batch, shape.length, shape.hidden], { generator: new sm.Generator(1), device: options.device, dtype: options.dtype }));
    const fused = layerFor(shape, 'fused', options.device, options.dtype);
    const masked = layerFor(shape, 'masked', options.device, options.dtype);
    masked.loadStateDict(fused.stateDict());
    const { groups: G, tokensPerGroup: T, capacity: C } = fused.geometry(shape.batch * shape.length);
    const E = shape.experts;
    const H = shape.hidden;
    const buffer = sm.keep(sm.randn([E, G * C, H], { generator: new sm.Generator(2), device: options.device, dtype: options.dtype }));
    const sync = (t: sm.Tensor) => t.sum().item(); // forces the work on asynchronous devices
    const probsOf = (tokens: sm.Tensor) => F.softmax(fused.router.forward(tokens), -1);

    for (const backward of [false, true]) {
      const pass = backward ? 'forward_backward' : 'forward';
      const finish = (out: sm.Tensor) => (backward ? out.sum().backward() : sync(out));
      const input = () => (backward ? x.detach().requiresGrad_() : x);
      const fns: Record<string, () => void> = {
        // Routing + dispatch + combine with identity experts: the overhead MoE adds.
        'fused dispatch_combine': () => {
          const tokens = input().reshape([G, T, H]);
          const probs = probsOf(tokens);
          const r = sm.fusedMoe.route(probs, 'experts_choose', { capacity: C });
          const w = sm.cat([probs.transpose(1, 2), sm.zeros([G, E, 1], { device: options.device, dtype: probs.dtype })], 2).gather(2, r.slotToken);
          finish(sm.fusedMoe.combine(sm.fusedMoe.dispatch(tokens, r.slotToken), r.slotToken, w.to(tokens.dtype), T));
        },
        'masked dispatch_combine': () => {
          const tokens = input().reshape([G, T, H]);
          const r = sm.routing.expertsChooseMasked(probsOf(tokens), C);
          const expertIn = sm.einsum('gth,gtec->egch', tokens, r.dispatch.to(tokens.dtype));
          finish(sm.einsum('egch,gtec->gth', expertIn, r.combine.to(tokens.dtype)));
        },
        // The expert GEMMs alone, on buffers of the layer's [E, G·C, H] shape.
        'expert_gemms layer': () => finish(fused.experts.forward(backward ? buffer.detach().requiresGrad_() : buffer)),
        'fused layer': () => finish(fused.forward(input()).output),
        'masked layer': () => finish(masked.forward(input()).output),
      };
      // Synchronised, so that a GPU's queued work is inside the timing.
      const synced = (fn: () => void) => () => {
        sm.tidy(fn);
        sm.cuda.synchronize();
      };
      const tidied = Object.fromEntries(Object.entries(fns).map(([k, fn]) => [k, synced(fn)]));
      const ms = timeInterleaved(tidied, options.repeats);
      for (const [key, value] of Object.entries(ms)) {
        const [impl, part] = key.split(' ') as [MoeResult['impl'], MoeResult['part']];
        record({ shape: shape.name, impl, part, pass, ms: value });
      }
      ratios[`${shape.name} dispatch_combine ${pass}: masked / fused`] = ms['masked dispatch_combine']! / ms['fused dispatch_combine']!;
      ratios[`${shape.name} layer ${pass}: fused / expert_gemms`] = ms['fused layer']! / ms['expert_gemms layer']!;
      ratios[`${shape.name} layer ${pass}: masked / expert_gemms`] = ms['masked layer']! / ms['expert_gemms layer']!;
      for (const p of [...fused.parameters(), ...masked.parameters()]) p.zeroGrad();
    }
    buffer.dispose();
    fused.dispose();
    masked.dispose();
    x.dispose();
  }

  let trainingStep: MoeBenchReport['training_step'];
  if (options.trainingStep) {
    const steps: Record<string, () => void> = {};
    const cleanup: (() => void)[] = [];
    const B = 8;
    for (const impl of ['fused', 'masked'] as const) {
      const config = sm.presetConfig('sparse-mixer-small', { vocab_size: 8000, dispatch_impl: impl });
      const model = new sm.PretrainingModel(config, sm.nn.initContext(0, 0.02, options.dtype, options.device));
      const L = config.max_seq_length;
      const g = new sm.Generator(3);
      const batch = {
        input_ids: sm.randint(1, 8000, [B, L], { generator: g, device: options.device }),
        type_ids: sm.zeros([B, L], { dtype: 'int64', device: options.device }),
        masked_lm_positions: sm.randint(0, L, [B, 20], { generator: g, device: options.device }),
        masked_lm_ids: sm.randint(1, 8000, [B, 20], { generator: g, device: options.device }),
        masked_lm_weights: sm.ones([B, 20], { device: options.device }),
        next_sentence_labels: sm.randint(0, 2, [B], { generator: g, device: options.device }),
      };
      steps[impl] = () => {
        sm.tidy(() => model.forward(batch).loss.backward());
        for (const p of model.parameters()) p.zeroGrad();
        sm.cuda.synchronize();
      };
      cleanup.push(() => {
        model.dispose();
        sm.dispose(batch);
        g.dispose();
      });
    }
    const ms = timeInterleaved(steps, options.repeats);
    for (const f of cleanup) f();
    options.log(`training step (forward+backward) sparse-mixer-small ${B}x128: fused ${ms['fused']!.toFixed(1)} ms, masked ${ms['masked']!.toFixed(1)} ms`);
    trainingStep = { preset: 'sparse-mixer-small', batch: '8x128', fused_ms: ms['fused']!, masked_ms: ms['masked']!, speedup: ms['masked']! / ms['fused']! };
  }
  const onCuda = options.device.startsWith('cuda');
  const bandwidth = dispatchCombineBandwidth({
    device: options.device, dtype: options.dtype, tokens: options.bandwidthTokens ?? (onCuda ? 64 * 512 : 8 * 512), repeats: options.repeats, inner: onCuda ? 50 : 3,
  });
  for (const b of bandwidth.results) {
    options.log(`bandwidth ${b.op.padEnd(8)} ${(b.bytes / 2 ** 20).toFixed(0).padStart(6)} MiB in ${b.ms.toFixed(3)} ms: ${b.gb_per_s.toFixed(0)} GB/s, ${(b.of_copy * 100).toFixed(0)}% of copy`);
  }
  return { results, ratios, bandwidth, ...(trainingStep ? { training_step: trainingStep } : {}), threads: sm.getNumThreads(), device: options.device };
}
