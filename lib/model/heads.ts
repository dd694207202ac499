// Pre-training and classification models: the encoder plus the heads of REFERENCE §1, their losses
// and the raw statistics (sums and counts) that aggregate exactly over many batches.
import { Dense, LayerNorm } from '../nn/layers';
import { Module } from '../nn/module';
import { initContext, zerosParam, type InitContext } from '../nn/init';
import { functional as F, profiler, scalar, stack, type Tensor } from '../tensor';
import type { ModelConfig } from './config';
import { Encoder } from './encoder';
import type { MoeStats } from './moe';

export interface PretrainingBatch {
  input_ids: Tensor; // int64 [B, L]
  type_ids: Tensor; // int64 [B, L]
  masked_lm_positions: Tensor; // int64 [B, P]
  masked_lm_ids: Tensor; // int64 [B, P]
  masked_lm_weights: Tensor; // float32 [B, P]
  next_sentence_labels: Tensor; // int64 [B]
}

export interface ClassificationBatch {
  input_ids: Tensor;
  type_ids: Tensor;
  /** int64 class ids, or float32 scores for regression tasks. */
  label: Tensor;
}

/** Scalar tensors to add up over batches (divide the sums by the counts at the end). */
export type RawStats = Record<string, Tensor>;

export interface ModelOutput {
  loss: Tensor;
  stats: RawStats;
  /** Each MoE layer's raw terms (for combining several processes' statistics exactly). */
  moe: MoeStats[];
}

/** Losses are computed in float32 at least: bfloat16 logits are widened, float64 ones kept. */
function lossPrecision(t: Tensor): Tensor {
  return t.dtype === 'float64' ? t : t.float();
}

/** Σ of auxiliary and z losses over MoE layers, and the three diversity metrics averaged. */
export function moeTerms(config: ModelConfig, moe: MoeStats[]): { loss: Tensor | undefined; stats: RawStats } {
  if (moe.length === 0) return { loss: undefined, stats: {} };
  const sum = (pick: (s: MoeStats) => Tensor) => stack(moe.map(pick)).sum();
  const aux = sum((s) => s.auxLoss);
  const z = sum((s) => s.zLoss);
  const layers = moe.length;
  return {
    loss: aux.mul(config.auxiliary_loss_factor).add(z.mul(config.router_z_loss_factor)),
    stats: {
      auxiliary_loss: aux,
      router_z_loss: z,
      fraction_tokens_left_behind: sum((s) => s.fractionLeftBehind).div(layers),
      expert_usage: sum((s) => s.expertUsage).div(layers),
      router_confidence: sum((s) => s.routerConfidence).div(layers),
    },
  };
}

/** MLM head: dense d_model→d_emb, GELU, LayerNorm, then the tied word embeddings and a bias. */
export class MlmHead extends Module {
  readonly dense: Dense;
  readonly layerNorm: LayerNorm;
  readonly outputBias: Tensor;

  constructor(ctx: InitContext, config: ModelConfig) {
    super();
    this.dense = this.child('dense', new Dense(ctx, config.d_model, config.d_emb));
    this.layerNorm = this.child('layer_norm', new LayerNorm(ctx, config.d_emb, config.layer_norm_epsilon));
    this.outputBias = this.param('output_bias', zerosParam(ctx, [config.vocab_size]));
  }

  /** hidden [B, P, d_model] -> logits [B, P, vocab] */
  forward(hidden: Tensor, wordEmbeddings: Tensor): Tensor {
    const h = this.layerNorm.forward(F.gelu(this.dense.forward(hidden), 'tanh'));
    return F.linear(h, wordEmbeddings, this.outputBias);
  }
}

export class PretrainingModel extends Module {
  readonly encoder: Encoder;
  readonly mlm: MlmHead;
  readonly nsp: Dense;

  constructor(readonly config: ModelConfig, ctx: InitContext = initContext(config.seed, config.init_std)) {
    super();
    this.encoder = this.child('encoder', new Encoder(config, ctx));
    this.mlm = this.child('mlm', new MlmHead(ctx, config));
    this.nsp = this.child('nsp', new Dense(ctx, config.d_model, 2));
  }

  forward(batch: PretrainingBatch): ModelOutput & { mlmLogits: Tensor; nspLogits: Tensor } {
    const { sequence, pooled, moe } = this.encoder.forward(batch.input_ids, batch.type_ids);
    return profiler.scope('heads', () => this.heads(batch, sequence, pooled, moe));
  }

  /** MLM and NSP heads, their losses and statistics. */
  private heads(batch: PretrainingBatch, sequence: Tensor, pooled: Tensor, moe: MoeStats[]): ModelOutput & { mlmLogits: Tensor; nspLogits: Tensor } {
    const [B, P] = batch.masked_lm_positions.shape as [number, number];
    const d = sequence.shape[2]!;
    const gathered = sequence.gather(1, batch.masked_lm_positions.unsqueeze(2).expand([B, P, d]));
    const mlmLogits = this.mlm.forward(gathered, this.encoder.embeddings.word.weight);
    const V = mlmLogits.shape[2]!;
    const weights = lossPrecision(batch.masked_lm_weights);
    const mlmCe = F.crossEntropy(lossPrecision(mlmLogits.reshape([B * P, V])), batch.masked_lm_ids.reshape([B * P]), { reduction: 'none' });
    const mlmLossSum = mlmCe.mul(weights.reshape([B * P])).sum();
    const mlmWeightSum = weights.sum();
    const mlmLoss = mlmLossSum.div(mlmWeightSum.clamp(1e-5));
    const mlmCorrect = mlmLogits.argmax(-1).eq(batch.masked_lm_ids).to(weights.dtype).mul(weights).sum();

    const nspLogits = this.nsp.forward(pooled);
    const nspCe = F.crossEntropy(lossPrecision(nspLogits), batch.next_sentence_labels, { reduction: 'none' });
    const nspLossSum = nspCe.sum();
    const nspLoss = nspLossSum.div(B);
    const nspCorrect = nspLogits.argmax(-1).eq(batch.next_sentence_labels).to(nspCe.dtype).sum();

    const terms = moeTerms(this.config, moe);
    let loss = mlmLoss.add(nspLoss);
    if (terms.loss) loss = loss.add(terms.loss);
    return {
      loss,
      mlmLogits,
      nspLogits,
      moe,
      stats: {
        masked_lm_loss_sum: mlmLossSum,
        masked_lm_weight_sum: mlmWeightSum,
        masked_lm_correct_sum: mlmCorrect,
        next_sentence_loss_sum: nspLossSum,
        next_sentence_correct_sum: nspCorrect,
        next_sentence_count: scalar(B),
        ...terms.stats,
      },
    };
  }
}

export class ClassificationModel extends Module {
  readonly encoder: Encoder;
  readonly classifier: Dense;

  /** numClasses 1 with regression for STS-B, COPA and ReCoRD scoring. */
  constructor(
    readonly config: ModelConfig,
    readonly numClasses: number,
    readonly regression = false,
    ctx: InitContext = initContext(config.seed, config.init_std),
  ) {
    super();
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new Error(`numClasses must be a positive integer, got ${numClasses}`);
    this.encoder = this.child('encoder', new Encoder(config, ctx));
    this.classifier = this.child('classifier', new Dense(ctx, config.d_model, numClasses));
  }

  /** Logits [B, numClasses] and the MoE statistics, without a loss (for inference). */
  logits(inputIds: Tensor, typeIds: Tensor): { logits: Tensor; moe: MoeStats[] } {
    const { pooled, moe } = this.encoder.forward(inputIds, typeIds);
    return { logits: profiler.scope('heads', () => this.classifier.forward(pooled)), moe };
  }

  forward(batch: ClassificationBatch): ModelOutput & { logits: Tensor } {
    const { logits, moe } = this.logits(batch.input_ids, batch.type_ids);
    return profiler.scope('heads', () => this.loss(batch, logits, moe));
  }

  private loss(batch: ClassificationBatch, logits: Tensor, moe: MoeStats[]): ModelOutput & { logits: Tensor } {
    const B = logits.shape[0]!;
    const lossSum = this.regression
      ? F.mseLoss(lossPrecision(logits.select(1, 0)), batch.label.to(logits.dtype === 'float64' ? 'float64' : 'float32'), 'sum')
      : F.crossEntropy(lossPrecision(logits), batch.label, { reduction: 'sum' });
    const terms = moeTerms(this.config, moe);
    let loss = lossSum.div(B);
    if (terms.loss) loss = loss.add(terms.loss);
    return { loss, logits, moe, stats: { loss_sum: lossSum, count: scalar(B), ...terms.stats } };
  }
}
