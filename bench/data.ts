// `sparse-mixer bench data`: tokenization and pre-training batch throughput, and how long a
// training step waits for its next batch when the loader prefetches.
import * as sm from '../lib';
import { median } from './timing';

const { CorpusStream, PretrainingStream, Prefetcher, Tokenizer, trainTokenizer, documentLines, pretrainingBatch } = sm.data;

export interface DataBenchReport {
  tokenization: { tokens: number; seconds: number; tokens_per_sec: number };
  pipeline: { max_seq_length: number; batch_size: number; batches: number; positions_per_sec: number; real_tokens_per_sec: number };
  training_wait: { preset: string; steps: number; step_ms: number; wait_ms: number; wait_fraction: number };
  corpus: string[];
  vocab_size: number;
}

export async function benchData(options: { corpus: string[]; vocab?: string; seconds: number; steps: number; log: (s: string) => void }): Promise<DataBenchReport> {
  let tokenizer: sm.data.Tokenizer;
  if (options.vocab) {
    tokenizer = Tokenizer.load(options.vocab);
  } else {
    const lines: string[] = [];
    for await (const doc of new CorpusStream({ spec: options.corpus })) lines.push(...documentLines(doc.text));
    tokenizer = Tokenizer.load(await trainTokenizer(lines, { vocabSize: 8000 }));
  }

  // 1. Tokenization alone: all lines of the corpus, in worker-thread batches.
  const texts: string[] = [];
  for await (const doc of new CorpusStream({ spec: options.corpus })) texts.push(...documentLines(doc.text));
  let tokens = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < options.seconds) {
    for (let i = 0; i < texts.length; i += 512) for (const ids of await tokenizer.encodeBatch(texts.slice(i, i + 512))) tokens += ids.length;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  const tokenization = { tokens, seconds: elapsed, tokens_per_sec: tokens / elapsed };
  options.log(`tokenization: ${Math.round(tokenization.tokens_per_sec).toLocaleString('en-US')} tokens/s`);

  // 2. Finished pre-training batches at L = 512 (pairs, layout, masking, tensors).
  const L = 512;
  const B = 8;
  const stream = new PretrainingStream({ corpus: { spec: options.corpus, shuffleBuffer: 64, epochs: Infinity }, tokenizer, maxSeqLength: L, batchSize: B });
  let batches = 0;
  let real = 0;
  const t1 = process.hrtime.bigint();
  let pipelineSeconds = 0;
  while (pipelineSeconds < options.seconds) {
    const examples = (await stream.nextBatch())!;
    for (const e of examples) {
      const firstPad = e.inputIds.indexOf(tokenizer.padId, 1);
      real += firstPad === -1 ? L : firstPad;
    }
    sm.dispose(pretrainingBatch(examples));
    batches++;
    pipelineSeconds = Number(process.hrtime.bigint() - t1) / 1e9;
  }
  await stream.close();
  const pipeline = { max_seq_length: L, batch_size: B, batches, positions_per_sec: (batches * B * L) / pipelineSeconds, real_tokens_per_sec: real / pipelineSeconds };
  options.log(`pre-training batches (L=${L}): ${Math.round(pipeline.positions_per_sec).toLocaleString('en-US')} positions/s, ${Math.round(pipeline.real_tokens_per_sec).toLocaleString('en-US')} real tokens/s`);

  // 3. A training-like step (forward + backward) fed by the prefetching loader.
  const preset = 'sparse-mixer-small';
  const config = sm.presetConfig(preset, { vocab_size: tokenizer.vocabSize });
  const model = new sm.PretrainingModel(config);
  const train = new PretrainingStream({ corpus: { spec: options.corpus, shuffleBuffer: 64, epochs: Infinity }, tokenizer, maxSeqLength: config.max_seq_length, batchSize: 8 });
  const loader = new Prefetcher(() => train.nextBatch(), () => undefined, 2);
  const waits: number[] = [];
  const steps: number[] = [];
  for (let s = 0; s < options.steps; s++) {
    const w0 = process.hrtime.bigint();
    const { item } = await loader.next();
    const w1 = process.hrtime.bigint();
    sm.tidy(() => model.forward(pretrainingBatch(item!)).loss.backward());
    for (const p of model.parameters()) p.zeroGrad();
    const w2 = process.hrtime.bigint();
    if (s > 0) {
      waits.push(Number(w1 - w0) / 1e6);
      steps.push(Number(w2 - w1) / 1e6);
    }
  }
  await loader.drain();
  await train.close();
  model.dispose();
  const waitTotal = waits.reduce((a, b) => a + b, 0);
  const stepTotal = steps.reduce((a, b) => a + b, 0);
  const trainingWait = { preset, steps: steps.length, step_ms: median(steps), wait_ms: median(waits), wait_fraction: waitTotal / (waitTotal + stepTotal) };
  options.log(`training steps (${preset}, 8x${config.max_seq_length}): step ${trainingWait.step_ms.toFixed(1)} ms, waiting ${(100 * trainingWait.wait_fraction).toFixed(2)}% of the time`);
  const vocabSize = tokenizer.vocabSize;
  tokenizer.dispose();
  return { tokenization, pipeline, training_wait: trainingWait, corpus: options.corpus, vocab_size: vocabSize };
}
