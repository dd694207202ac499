// Embeddings, encoder blocks (post-LayerNorm), the encoder and its pooler (REFERENCE §1).
import { Dense, Dropout, Embedding, LayerNorm } from '../nn/layers';
import { Module, ModuleList } from '../nn/module';
import { initContext, type InitContext } from '../nn/init';
import { arange, functional as F, profiler, tidy, type Tensor } from '../tensor';
import { SelfAttention } from './attention';
import type { ModelConfig } from './config';
import { layerPlan, type LayerPlan } from './layout';
import { maskPadding, Mixing } from './mixing';
import { MoeLayer, type MoeStats } from './moe';

export class Embeddings extends Module {
  readonly word: Embedding;
  readonly position: Embedding;
  readonly type: Embedding;
  readonly layerNorm: LayerNorm;
  readonly hiddenMappingIn: Dense;
  readonly dropout: Dropout;

  constructor(ctx: InitContext, readonly config: ModelConfig) {
    super();
    const c = config;
    this.word = this.child('word', new Embedding(ctx, c.vocab_size, c.d_emb));
    this.position = this.child('position', new Embedding(ctx, c.max_seq_length, c.d_emb));
    this.type = this.child('type', new Embedding(ctx, c.type_vocab_size, c.d_emb));
    this.layerNorm = this.child('layer_norm', new LayerNorm(ctx, c.d_emb, c.layer_norm_epsilon));
    this.hiddenMappingIn = this.child('hidden_mapping_in', new Dense(ctx, c.d_emb, c.d_model));
    this.dropout = this.child('dropout', new Dropout(c.dropout_rate));
  }

  forward(inputIds: Tensor, typeIds: Tensor): Tensor {
    return profiler.scope('embeddings', () => this.embed(inputIds, typeIds));
  }

  private embed(inputIds: Tensor, typeIds: Tensor): Tensor {
    const N = inputIds.shape[1]!;
    if (N > this.config.max_seq_length) {
      throw new Error(`input length ${N} exceeds max_seq_length ${this.config.max_seq_length}`);
    }
    const positions = arange(N, undefined, 1, { device: inputIds.device }).unsqueeze(0);
    const summed = this.word.forward(inputIds).add(this.position.forward(positions)).add(this.type.forward(typeIds));
    return this.dropout.forward(this.hiddenMappingIn.forward(this.layerNorm.forward(summed)));
  }
}

export class FeedForward extends Module {
  readonly intermediate: Dense;
  readonly output: Dense;
  readonly dropout: Dropout;

  constructor(ctx: InitContext, config: ModelConfig) {
    super();
    this.intermediate = this.child('intermediate', new Dense(ctx, config.d_model, config.d_ff));
    this.output = this.child('output', new Dense(ctx, config.d_ff, config.d_model));
    this.dropout = this.child('dropout', new Dropout(config.dropout_rate));
  }

  forward(x: Tensor): Tensor {
    return profiler.scope('feed_forward', () => this.dropout.forward(this.output.forward(F.gelu(this.intermediate.forward(x), 'tanh'))));
  }
}

/** x = LN1(x + Mix(x)); x = LN2(x + FF(x)). */
export class EncoderBlock extends Module {
  readonly attention: SelfAttention | undefined;
  readonly mixing: Mixing | undefined;
  readonly mixingDropout: Dropout;
  readonly feedForward: FeedForward | undefined;
  readonly moe: MoeLayer | undefined;
  readonly mixingLayerNorm: LayerNorm;
  readonly outputLayerNorm: LayerNorm;

  constructor(ctx: InitContext, readonly config: ModelConfig, readonly plan: LayerPlan) {
    super();
    const c = config;
    if (plan.attention) this.attention = this.child('attention', new SelfAttention(ctx, c));
    else this.mixing = this.child('mixing', new Mixing(ctx, c.model_arch as Exclude<typeof c.model_arch, 'BERT'>, c));
    this.mixingDropout = this.child('mixing_dropout', new Dropout(c.mixing_dropout_rate));
    this.mixingLayerNorm = this.child('mixing_layer_norm', new LayerNorm(ctx, c.d_model, c.layer_norm_epsilon));
    if (plan.moe) this.moe = this.child('moe', new MoeLayer(ctx, c));
    else this.feedForward = this.child('feed_forward', new FeedForward(ctx, c));
    this.outputLayerNorm = this.child('output_layer_norm', new LayerNorm(ctx, c.d_model, c.layer_norm_epsilon));
  }

  /** padding: true at padding positions [B, N], needed when this is an attention layer. */
  forward(x: Tensor, inputIds: Tensor, padding: Tensor | undefined): { output: Tensor; moe?: MoeStats } {
    // Sub-blocks in their own scopes: temporaries are freed as soon as each one ends.
    const mixed = tidy(() => {
      if (this.attention) return profiler.scope('attention', () => this.attention!.forward(x, padding!));
      return profiler.scope('mixing', () => {
        const input = this.config.mask_padding_in_mixing ? maskPadding(x, inputIds, this.config.pad_id) : x;
        return this.mixingDropout.forward(this.mixing!.forward(input));
      });
    });
    const norm = (ln: LayerNorm, a: Tensor, b: Tensor) => profiler.scope('layer_norm', () => ln.forward(a.add(b)));
    const h = norm(this.mixingLayerNorm, x, mixed);
    if (this.moe) {
      const { output, stats } = tidy(() => this.moe!.forward(h));
      return { output: norm(this.outputLayerNorm, h, output), moe: stats };
    }
    return { output: norm(this.outputLayerNorm, h, tidy(() => this.feedForward!.forward(h))) };
  }
}

export interface EncoderOutput {
  /** [B, N, d_model] */
  sequence: Tensor;
  /** [B, d_model]: tanh(dense(sequence[:, 0])) */
  pooled: Tensor;
  /** One entry per MoE layer. */
  moe: MoeStats[];
}

export class Encoder extends Module {
  readonly embeddings: Embeddings;
  readonly layers: ModuleList<EncoderBlock>;
  readonly pooler: Dense;

  constructor(readonly config: ModelConfig, ctx: InitContext = initContext(config.seed, config.init_std)) {
    super();
    this.embeddings = this.child('embeddings', new Embeddings(ctx, config));
    this.layers = this.child('layers', new ModuleList(layerPlan(config).map((p) => new EncoderBlock(ctx, config, p))));
    this.pooler = this.child('pooler', new Dense(ctx, config.d_model, config.d_model));
  }

  /** inputIds and typeIds: int64 [B, N]. */
  forward(inputIds: Tensor, typeIds: Tensor): EncoderOutput {
    if (inputIds.shape.join() !== typeIds.shape.join() || inputIds.rank !== 2) {
      throw new Error(`input_ids and type_ids must both be [batch, length], got [${inputIds.shape}] and [${typeIds.shape}]`);
    }
    let x = this.embeddings.forward(inputIds, typeIds);
    const needsPadding = this.layers.items.some((l) => l.attention !== undefined);
    const padding = needsPadding ? inputIds.eq(this.config.pad_id) : undefined;
    const moe: MoeStats[] = [];
    for (const layer of this.layers.items) {
      // Each layer's temporaries are freed when it ends (autograd keeps what backward needs), so
      // their memory is reused by the next layer instead of fresh pages being faulted in.
      const out = tidy(() => layer.forward(x, inputIds, padding));
      x = out.output;
      if (out.moe) moe.push(out.moe);
    }
    const pooled = profiler.scope('heads', () => this.pooler.forward(x.select(1, 0)).tanh());
    return { sequence: x, pooled, moe };
  }
}
