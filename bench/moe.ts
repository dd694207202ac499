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

export interface MoeBenchReport {
  results: MoeResult[];
  ratios: Record<string, number>;
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

export function benchMoe(options: { repeats: number; device: sm.Device; dtype: sm.DType; shapes?: string[]; trainingStep: boolean; log: (s: string) => void }): MoeBenchReport {
  const results: MoeResult[] = [];
  const ratios: Record<string, number> = {};
  const shapes = MOE_SHAPES.filter((s) => !options.shapes || options.shapes.includes(s.name));
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
      const tidied = Object.fromEntries(Object.entries(fns).map(([k, fn]) => [k, () => sm.tidy(fn)]));
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
  return { results, ratios, ...(trainingStep ? { training_step: trainingStep } : {}), threads: sm.getNumThreads(), device: options.device };
}
