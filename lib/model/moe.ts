// The Mixture-of-Experts feed-forward layer (REFERENCE §2).
import { Dense } from '../nn/layers';
import { Module } from '../nn/module';
import { normal, zerosParam, type InitContext } from '../nn/init';
import { autocast, baddbmm, cat, einsum, functional as F, fusedMoe, isAutocastEnabled, profiler, rand, scalar, type Tensor, zeros } from '../tensor';
import type { ModelConfig } from './config';
import {
  expertCapacity,
  expertsChooseMasked,
  expertsChooseSlots,
  numGroups,
  routerZLoss,
  tokensChooseMasked,
  tokensChooseSlots,
} from './routing';

/** Per-layer MoE terms: the two losses and the three diversity metrics, as scalar tensors. */
export interface MoeStats {
  auxLoss: Tensor;
  zLoss: Tensor;
  fractionLeftBehind: Tensor;
  expertUsage: Tensor;
  routerConfidence: Tensor;
  /** routerConfidence's numerator and denominator, so that several ranks' values combine exactly. */
  combineWeightSum: Tensor;
  dispatchedSlots: Tensor;
}

/**
 * Where experts live when they are spread over processes (expert parallelism): `size` ranks hold
 * `num_experts / size` experts each, this one the `rank`-th block. The distributed layer provides
 * it (lib/distributed); without one, every expert runs in this process.
 */
export interface ExpertExchange {
  readonly rank: number;
  readonly size: number;
  /** [E, S, H] slots of this rank's tokens -> [E / size, Σ S_p, H]: every rank's slots for this rank's experts. */
  toExperts(x: Tensor): { local: Tensor; slotsPerRank: number[] };
  /** The inverse: this rank's experts' outputs go back to the ranks their tokens came from. */
  fromExperts(y: Tensor, slotsPerRank: readonly number[]): Tensor;
}

/** E independent feed-forward networks, stored stacked so they run as batched GEMMs. */
export class Experts extends Module {
  readonly w1: Tensor;
  readonly b1: Tensor;
  readonly w2: Tensor;
  readonly b2: Tensor;
  private exchange: ExpertExchange | undefined;

  constructor(ctx: InitContext, readonly numExperts: number, dModel: number, dFF: number, readonly dropoutRate: number) {
    super();
    this.w1 = this.param('w1', normal(ctx, [numExperts, dModel, dFF]));
    this.b1 = this.param('b1', zerosParam(ctx, [numExperts, 1, dFF]));
    this.w2 = this.param('w2', normal(ctx, [numExperts, dFF, dModel]));
    this.b2 = this.param('b2', zerosParam(ctx, [numExperts, 1, dModel]));
  }

  /** [e, S, H] -> [e, S, H]: each expert held here on its S slots. */
  forward(x: Tensor): Tensor {
    const h = F.gelu(baddbmm(this.b1, x, this.w1), 'tanh');
    const y = baddbmm(this.b2, h, this.w2);
    return this.training && this.dropoutRate > 0 ? F.dropout(y, this.dropoutRate, true) : y;
  }

  /** [E, S, H] -> [E, S, H]: every expert on its slots, wherever the expert lives. */
  runAll(x: Tensor): Tensor {
    if (!this.exchange) return profiler.scope('moe/experts', () => this.forward(x));
    const { local, slotsPerRank } = profiler.scope('moe/exchange', () => this.exchange!.toExperts(x));
    const y = profiler.scope('moe/experts', () => this.forward(local));
    return profiler.scope('moe/exchange', () => this.exchange!.fromExperts(y, slotsPerRank));
  }

  /**
   * Keeps only this rank's block of experts (parameters narrowed in place) and sends slots through
   * the exchange from now on. Call it before creating an optimizer.
   */
  shardOver(exchange: ExpertExchange): void {
    const { rank, size } = exchange;
    if (this.exchange) throw new Error('experts are already sharded');
    if (!Number.isInteger(size) || size < 1 || this.numExperts % size !== 0) {
      throw new Error(`num_experts ${this.numExperts} does not divide over ${size} expert-parallel ranks`);
    }
    for (const name of ['w1', 'b1', 'w2', 'b2'] as const) this.shardParam(name, { dim: 0, index: rank, count: size });
    this.exchange = exchange;
  }
}

export class MoeLayer extends Module {
  readonly router: Dense;
  readonly experts: Experts;

  constructor(ctx: InitContext, readonly config: ModelConfig) {
    super();
    this.router = this.child('router', new Dense(ctx, config.d_model, config.num_experts));
    this.experts = this.child(
      'experts',
      new Experts(ctx, config.num_experts, config.d_model, config.d_ff, config.expert_dropout_rate),
    );
  }

  /** Routing group count, tokens per group and expert capacity for B·N tokens. */
  geometry(numTokens: number, training = this.training): { groups: number; tokensPerGroup: number; capacity: number } {
    const c = this.config;
    const groups = numGroups(numTokens, c.max_group_size);
    const tokensPerGroup = numTokens / groups;
    let capacity = expertCapacity(tokensPerGroup, c.num_experts, training ? c.train_capacity_factor : c.eval_capacity_factor, c.min_expert_capacity);
    // Experts-choose takes top-C of T tokens: it cannot take more than there are (ours: clamp).
    if (c.router_type === 'experts_choose') capacity = Math.min(capacity, tokensPerGroup);
    return { groups, tokensPerGroup, capacity };
  }

  /**
   * The router runs in float32 (float64 models keep float64, for gradient checks), also under
   * autocast, with optional multiplicative jitter in training.
   */
  private routerLogits(tokens: Tensor): Tensor {
    const routerDtype = tokens.dtype === 'float64' ? 'float64' : 'float32';
    const autocastDevice = tokens.device.startsWith('cuda') ? 'cuda' : 'cpu';
    const logits = () => {
      let input = tokens.to(routerDtype);
      if (this.training && this.config.jitter_noise > 0) {
        const noise = rand(input.shape, { dtype: routerDtype, device: input.device });
        input = input.mul(noise.mul(2 * this.config.jitter_noise).add(1 - this.config.jitter_noise));
      }
      return F.linear(input, this.router.weight.to(routerDtype), this.router.bias!.to(routerDtype));
    };
    return isAutocastEnabled(autocastDevice) ? autocast(logits, { device: autocastDevice, enabled: false }) : logits();
  }

  forward(x: Tensor): { output: Tensor; stats: MoeStats } {
    const c = this.config;
    const [B, N, H] = x.shape as [number, number, number];
    const { groups: G, tokensPerGroup: T, capacity: C } = this.geometry(B * N);
    const tokens = x.reshape([G, T, H]);
    const { probs, zLoss } = profiler.scope('moe/router', () => {
      const logits = this.routerLogits(tokens);
      return { probs: F.softmax(logits, -1), zLoss: routerZLoss(logits) };
    });
    const route = { k: c.num_selected_experts, capacity: C, batchPrioritized: c.batch_prioritized_routing };
    const expertsChoose = c.router_type === 'experts_choose';

    let output: Tensor;
    let auxLoss: Tensor;
    let dispatchedTokens: Tensor; // tokens sent to at least one expert
    let dispatchedSlots: Tensor;
    let combineSum: Tensor;
    if (c.dispatch_impl === 'fused') {
      const { r, slotWeight } = profiler.scope('moe/routing', () => {
        const r = fusedMoe.route(probs, c.router_type, route);
        // Slot weights come from the probabilities by a gather, so the router gets its gradient.
        const padded = cat([probs.transpose(1, 2), zeros([G, c.num_experts, 1], { dtype: probs.dtype, device: probs.device })], 2);
        return { r, slotWeight: padded.gather(2, r.slotToken) };
      });
      auxLoss = expertsChoose ? zeros([], { dtype: probs.dtype, device: probs.device }) : r.expertFraction.mul(probs.mean(1)).mean().mul(c.num_experts ** 2);
      const expertOut = this.experts.runAll(profiler.scope('moe/dispatch', () => fusedMoe.dispatch(tokens, r.slotToken)));
      output = profiler.scope('moe/combine', () => fusedMoe.combine(expertOut, r.slotToken, slotWeight.to(tokens.dtype), T, c.deterministic_moe));
      dispatchedTokens = r.dispatchedTokens;
      dispatchedSlots = r.filledSlots;
      combineSum = slotWeight.sum();
    } else if (c.dispatch_impl === 'masked') {
      const r = profiler.scope('moe/routing', () => (expertsChoose ? expertsChooseMasked(probs, C) : tokensChooseMasked(probs, route)));
      auxLoss = r.auxLoss;
      const expertIn = profiler.scope('moe/dispatch', () => einsum('gth,gtec->egch', tokens, r.dispatch.to(tokens.dtype)).reshape([c.num_experts, G * C, H]));
      const expertOut = this.experts.runAll(expertIn).reshape([c.num_experts, G, C, H]);
      output = profiler.scope('moe/combine', () => einsum('egch,gtec->gth', expertOut, r.combine.to(tokens.dtype)));
      dispatchedTokens = r.dispatch.sum([2, 3]).gt(0).sum();
      dispatchedSlots = r.dispatch.sum();
      combineSum = r.combine.sum();
    } else {
      const r = profiler.scope('moe/routing', () => (expertsChoose ? expertsChooseSlots(probs, C) : tokensChooseSlots(probs, route)));
      auxLoss = r.auxLoss;
      output = this.dispatchCombine(tokens, r.slotToken, r.slotWeight);
      const filled = r.slotToken.lt(T);
      const reached = zeros([G, T + 1], { device: tokens.device }).scatter(1, r.slotToken.reshape([G, -1]), filled.reshape([G, -1]).float());
      dispatchedTokens = reached.narrow(1, 0, T).gt(0).sum();
      dispatchedSlots = filled.sum();
      combineSum = r.slotWeight.sum();
    }
    const numTokens = G * T;
    const stats: MoeStats = {
      auxLoss,
      zLoss,
      fractionLeftBehind: dispatchedTokens.float().div(numTokens).rsub(1),
      expertUsage: expertsChoose ? scalar(1, { dtype: probs.dtype, device: probs.device }) : dispatchedSlots.float().div(c.num_experts * C * G),
      routerConfidence: combineSum.div(dispatchedSlots.float().clamp(1)),
      combineWeightSum: combineSum,
      dispatchedSlots: dispatchedSlots.float(),
    };
    return { output: output.reshape([B, N, H]), stats };
  }

  /** Gathers each slot's token into expert buffers [E, G·C, H], runs the experts, scatters back. */
  private dispatchCombine(tokens: Tensor, slotToken: Tensor, slotWeight: Tensor): Tensor {
    const [G, T, H] = tokens.shape as [number, number, number];
    const [, E, C] = slotToken.shape as [number, number, number];
    const padded = cat([tokens, zeros([G, 1, H], { dtype: tokens.dtype, device: tokens.device })], 1); // row T is zero
    const index = slotToken.reshape([G, E * C, 1]).expand([G, E * C, H]);
    const expertIn = padded.gather(1, index).reshape([G, E, C, H]).transpose(0, 1).reshape([E, G * C, H]);
    const expertOut = this.experts.runAll(expertIn).reshape([E, G, C, H]).transpose(0, 1).reshape([G, E * C, H]);
    const weighted = expertOut.mul(slotWeight.reshape([G, E * C, 1]).to(tokens.dtype));
    const combined = zeros([G, T + 1, H], { dtype: weighted.dtype, device: tokens.device }).scatterAdd(1, index, weighted);
    return combined.narrow(1, 0, T);
  }
}
