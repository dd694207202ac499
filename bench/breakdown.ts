// The time breakdown of `bench models --breakdown`: where a training step or an inference pass
// spends its time, per part of the model, forward and backward, next to each part's analytic
// FLOPs and bytes (so each part's distance from the machine's limits shows). Ours from libtorch's
// profiler with the model's scopes (lib/tensor/profiler.ts); the PyTorch peer's the same way
// (torch.autograd.profiler and record_function scopes of the same names, models_peer.py).
import * as sm from '../lib';
import { routing } from '../lib/model';

/** The parts, in the order a step runs them; MoE parts are the MoE layer's phases. */
export const PARTS = [
  'embeddings',
  'mixing',
  'attention',
  'layer_norm',
  'feed_forward',
  'moe/router',
  'moe/routing',
  'moe/dispatch',
  'moe/exchange',
  'moe/experts',
  'moe/combine',
  'heads',
  'gradient accumulation',
  'optimizer',
  'other',
] as const;
export type Part = (typeof PARTS)[number];

export interface PartCost {
  /** Analytic floating-point operations of the part's forward (multiply-adds count 2). */
  flops: number;
  /** Bytes the forward must at least read and write: its weights, inputs and outputs once. */
  bytes: number;
}

export interface PartTiming {
  forward_ms: number;
  backward_ms: number;
}

/** Per part: milliseconds and the analytic cost; backward costs twice the forward's FLOPs and bytes. */
export interface BreakdownRow extends PartTiming {
  part: Part;
  flops: number;
  bytes: number;
  /** The time the part would take at the measured matmul peak or copy bandwidth, whichever binds, over its time. */
  efficiency: number | null;
}

/**
 * Forward costs of each part for a batch of B sequences of L tokens with P masked positions each.
 * Inference runs the encoder only: its 'heads' part is the pooler.
 */
export function partCosts(c: sm.ModelConfig, B: number, L: number, P: number, pass: 'train' | 'infer' = 'train'): Partial<Record<Part, PartCost>> {
  const T = B * L;
  const f = 4; // bytes of a float32
  const d = c.d_model;
  const plan = sm.layerPlan(c);
  const out: Partial<Record<Part, PartCost>> = {};
  const add = (part: Part, flops: number, bytes: number) => {
    const x = (out[part] ??= { flops: 0, bytes: 0 });
    x.flops += flops;
    x.bytes += bytes;
  };
  add('embeddings', 2 * T * c.d_emb * d, f * (3 * T * c.d_emb + c.d_emb * d + T * d));
  for (const layer of plan) {
    if (layer.attention) add('attention', T * (8 * d * d) + B * 4 * L * L * d, f * (4 * d * d + 2 * T * d + 3 * T * d + 2 * B * c.num_heads * L * L));
    else add('mixing', B * (2 * L * L * d + 2 * L * d * d), f * (L * L + d * d + 3 * T * d));
    add('layer_norm', 2 * 8 * T * d, f * 2 * 3 * T * d);
    if (layer.moe) {
      const G = routing.numGroups(T, c.max_group_size);
      const C = Math.min(routing.expertCapacity(T / G, c.num_experts, c.train_capacity_factor, c.min_expert_capacity), c.router_type === 'experts_choose' ? T / G : Infinity);
      const slots = c.num_experts * G * C;
      add('moe/router', 2 * T * d * c.num_experts, f * (T * d + d * c.num_experts + 2 * T * c.num_experts));
      add('moe/dispatch', 0, f * 2 * slots * d);
      add('moe/experts', 4 * slots * d * c.d_ff, f * (2 * c.num_experts * d * c.d_ff + 2 * slots * d + slots * c.d_ff));
      add('moe/combine', 2 * slots * d, f * (slots * d + 2 * T * d));
    } else {
      add('feed_forward', 4 * T * d * c.d_ff, f * (2 * d * c.d_ff + 2 * T * d + 2 * T * c.d_ff));
    }
  }
  if (pass === 'infer') add('heads', 2 * B * d * d, f * (d * d + 2 * B * d));
  else add('heads', B * P * (2 * d * c.d_emb + 2 * c.d_emb * c.vocab_size) + 2 * B * d * d, f * (c.vocab_size * c.d_emb + B * P * c.vocab_size + d * d));
  return out;
}

/** Our profiler's labels to parts (unknown labels, root scopes and glue go to 'other'). */
function partOf(label: string): Part {
  if (label === 'backward (accumulate grads)') return 'gradient accumulation';
  return (PARTS as readonly string[]).includes(label) ? (label as Part) : 'other';
}

/** Sums a profiler breakdown (milliseconds by label) into parts. */
export function toParts(times: Record<string, sm.profiler.PartTime>): Record<Part, PartTiming> {
  const out = Object.fromEntries(PARTS.map((p) => [p, { forward_ms: 0, backward_ms: 0 }])) as Record<Part, PartTiming>;
  for (const [label, t] of Object.entries(times)) {
    const part = partOf(label);
    out[part].forward_ms += t.forwardMs;
    out[part].backward_ms += t.backwardMs;
  }
  return out;
}

/** Rows with costs and efficiencies; `train` counts backward's 2× FLOPs and bytes. */
export function breakdownRows(times: Record<Part, PartTiming>, costs: Partial<Record<Part, PartCost>>, train: boolean, peakGflops: number, copyGBps: number | null): BreakdownRow[] {
  return PARTS.filter((p) => times[p].forward_ms + times[p].backward_ms > 0 || costs[p]).map((part) => {
    const t = times[part];
    const cost = costs[part] ?? { flops: 0, bytes: 0 };
    const scale = train ? 3 : 1;
    const flops = cost.flops * scale;
    const bytes = cost.bytes * scale;
    const ms = t.forward_ms + t.backward_ms;
    const limitMs = Math.max(flops / (peakGflops * 1e6), copyGBps ? bytes / (copyGBps * 1e6) : 0);
    return { part, ...t, flops, bytes, efficiency: ms > 0 && limitMs > 0 ? limitMs / ms : null };
  });
}

/** One profiled step of ours: what each part took (the model's scopes; backward and optimizer as roots). */
export function profileStep(step: { forward: () => sm.Tensor | void; backward?: (loss: sm.Tensor) => void; optimizer?: () => void }, gpu: boolean): Record<Part, PartTiming> {
  sm.profiler.startProfiler({ cuda: gpu });
  let profile: sm.profiler.Profile;
  try {
    const loss = sm.profiler.scope('forward', step.forward);
    if (loss && step.backward) sm.profiler.scope('backward', () => step.backward!(loss));
    if (step.optimizer) sm.profiler.scope('optimizer', step.optimizer);
    if (gpu) sm.cuda.synchronize();
  } finally {
    profile = sm.profiler.stopProfiler();
  }
  return toParts(sm.profiler.breakdown(profile, { gpu }));
}

/** Best GB/s of copying a 64 MiB tensor (read + write) on the device: the memory bandwidth bound. */
export function copyBandwidth(device: sm.Device): number {
  return sm.tidy(() => {
    const src = sm.zeros([16 << 20], { device });
    const dst = sm.zeros([16 << 20], { device });
    let best = Infinity;
    for (let r = 0; r < 6; r++) {
      sm.cuda.synchronize();
      const start = process.hrtime.bigint();
      dst.copyFrom(src);
      sm.cuda.synchronize();
      if (r > 0) best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
    }
    return (2 * src.numel * 4) / best / 1e9;
  });
}
