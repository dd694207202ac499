// AdamW over a module's parameters (REFERENCE §4: β1 0.9, β2 0.999, ε 1e-6, weight decay 0.01),
// updated by one fused native call, with state for checkpoints.
import type { Module, ShardSpec } from '../nn';
import { keep, noGrad, optim, tidy, zerosLike, type Tensor } from '../tensor';

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Exclude biases and LayerNorm parameters from weight decay (the reference decays everything). */
  excludeBiasAndNormFromDecay?: boolean;
}

/** Names that the common exclusion leaves undecayed: biases and LayerNorm scales and offsets. */
export function isBiasOrNorm(name: string): boolean {
  return /(^|\.)(bias|b1|b2|output_bias)$/.test(name) || /layer_norm\.(weight|bias)$/.test(name);
}

export class AdamW {
  readonly names: string[];
  readonly params: Tensor[];
  private readonly m: Tensor[];
  private readonly v: Tensor[];
  private readonly decay: boolean[];
  /** Parameters that hold a block of a larger tensor (expert parallelism), by name. */
  private readonly shards: Map<string, ShardSpec>;
  private readonly hyper: Required<Omit<AdamWOptions, 'excludeBiasAndNormFromDecay'>>;
  /** Updates applied so far. */
  stepCount = 0;

  constructor(module: Module, options: AdamWOptions = {}) {
    const named = module.namedParameters();
    this.names = named.map(([n]) => n);
    this.params = named.map(([, p]) => p);
    this.m = this.params.map((p) => keep(zerosLike(p)));
    this.v = this.params.map((p) => keep(zerosLike(p)));
    this.decay = this.names.map((n) => !(options.excludeBiasAndNormFromDecay && isBiasOrNorm(n)));
    this.shards = new Map(module.namedShards());
    this.hyper = { beta1: options.beta1 ?? 0.9, beta2: options.beta2 ?? 0.999, eps: options.eps ?? 1e-6, weightDecay: options.weightDecay ?? 0.01 };
  }

  /** One update with this learning rate; gradients are left in place (see zeroGrad). */
  step(lr: number): void {
    this.stepCount += 1;
    optim.adamwStep(this.params, this.m, this.v, this.decay, { lr, step: this.stepCount, ...this.hyper });
  }

  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }

  /** The moments by name ("m.<param>", "v.<param>"), for a checkpoint; the tensors are the optimizer's own. */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    this.names.forEach((n, i) => {
      out.set(`m.${n}`, this.m[i]!);
      out.set(`v.${n}`, this.v[i]!);
    });
    return out;
  }

  /**
   * Restores moments saved by stateDict(); every name must be present with the right shape (for a
   * sharded parameter, its block's or the whole tensor's, of which the block is taken).
   */
  loadStateDict(state: Map<string, Tensor>, stepCount: number): void {
    const missing = [...this.stateDict().keys()].filter((k) => !state.has(k));
    if (missing.length) throw new Error(`optimizer state is missing ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`);
    noGrad(() =>
      tidy(() => {
        for (const [name, t] of this.stateDict()) {
          let saved = state.get(name)!;
          const shard = this.shards.get(name.slice(2)); // "m.<param>" / "v.<param>"
          if (shard && saved.shape.join() !== t.shape.join() && saved.shape[shard.dim] === t.shape[shard.dim]! * shard.count) {
            const length = t.shape[shard.dim]!;
            saved = saved.narrow(shard.dim, shard.index * length, length);
          }
          if (saved.shape.join() !== t.shape.join()) throw new Error(`optimizer state ${name}: expected shape [${t.shape}], got [${saved.shape}]`);
          t.copyFrom(saved.to(t.dtype).to(t.device));
        }
      }),
    );
    this.stepCount = stepCount;
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}
