// One rank of `bench distributed` (ours): a pre-training model trained by the real Trainer (in one
// process, or data/expert parallel on several), on a fixed global batch. Started with the torchrun
// environment and BENCH_SPEC; answers JSON requests on stdin: {"cmd":"steps","n":N} -> the
// seconds of each step, communication timings and the bytes this process sent; {"cmd":"quit"}.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import * as sm from '../lib';
import { loadSafetensors } from '../lib/train/checkpoint';
import { Trainer } from '../lib/train/loop';
import { stepParts } from '../lib/train/pretrain';

export interface WorkerSpec {
  preset: string;
  vocabSize: number;
  /** Examples per step over all ranks. */
  batchSize: number;
  seqLength: number;
  expertParallelSize: number;
  /** model.safetensors and batch.safetensors written by the orchestrator (bench/model_inputs.ts). */
  weights: string;
  batch: string;
}

export interface StepsReply {
  seconds: number[];
  /** Gradient all-reduce per step (undefined in one process). */
  comm: { commMs: number; exposedMs: number; bytes: number }[];
  /** Bytes this process wrote to sockets and files during the steps (/proc/self/io wchar). */
  bytesSent: number;
  loss: number;
}

export function bytesWritten(): number {
  const m = /^wchar: (\d+)$/m.exec(fs.readFileSync('/proc/self/io', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

const BATCH_FIELDS = ['input_ids', 'type_ids', 'masked_lm_positions', 'masked_lm_ids', 'masked_lm_weights', 'next_sentence_labels'] as const;

async function main(): Promise<void> {
  const spec = JSON.parse(process.env['BENCH_SPEC'] ?? '{}') as WorkerSpec;
  const env = sm.distributed.launchEnvironment();
  if (env.worldSize > 1) sm.distributed.init();
  const config = sm.train.trainConfig({
    preset: spec.preset,
    vocab_size: spec.vocabSize,
    max_seq_length: spec.seqLength,
    train_batch_size: spec.batchSize,
    expert_parallel_size: spec.expertParallelSize,
    learning_rate: 1e-4,
    warmup_steps: 0,
  });
  const model = new sm.PretrainingModel(config);
  const weights = loadSafetensors(spec.weights).tensors;
  model.loadStateDict(weights);
  sm.dispose([...weights.values()]);
  const workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-bench-dist-'));
  const trainer = new Trainer(model, config, { workdir, log: () => {} });
  const loaded = loadSafetensors(spec.batch).tensors;
  const global = Object.fromEntries(BATCH_FIELDS.map((k) => [k, sm.keep(loaded.get(k)!)])) as unknown as sm.PretrainingBatch;
  const weightsPerRow = Array.from({ length: spec.batchSize }, (_, r) => sm.tidy(() => global.masked_lm_weights.select(0, r).sum().item()));
  const rows = Array.from({ length: spec.batchSize }, (_, r) => r);
  const parts = stepParts(rows, config, trainer.parallel, (part) => ({ masked_lm_weight_sum: part.reduce((s, r) => s + weightsPerRow[r]!, 0), next_sentence_count: part.length }));
  // This rank's rows of each part, as tensors (what the data pipeline would hand it).
  const local = parts.map((p) => ({
    batch: sm.tidy(() => {
      const index = sm.tensor(p.batch, { dtype: 'int64' });
      return Object.fromEntries(BATCH_FIELDS.map((k) => [k, sm.keep(global[k].indexSelect(0, index))])) as unknown as sm.PretrainingBatch;
    }),
    denominators: p.denominators,
  }));
  const schedule = { base: 1e-4, warmupSteps: 0, decaySteps: 1_000_000, kind: 'constant' as const };
  let step = 0;
  const respond = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
  respond({ ready: true, rank: env.rank, parameters: model.numParameters() });
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const req = JSON.parse(line) as { cmd: string; n?: number };
    if (req.cmd === 'quit') break;
    const reply: StepsReply = { seconds: [], comm: [], bytesSent: 0, loss: NaN };
    const before = bytesWritten();
    for (let i = 0; i < (req.n ?? 1); i++) {
      const start = process.hrtime.bigint();
      const r = trainer.update(local, (batch) => model.forward(batch), schedule, ++step);
      reply.seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
      if (r.comm) reply.comm.push({ commMs: r.comm.commMs, exposedMs: r.comm.exposedMs, bytes: r.comm.bytes });
      reply.loss = r.loss;
    }
    reply.bytesSent = bytesWritten() - before;
    respond(reply);
  }
  trainer.close();
  model.dispose();
  for (const p of local) sm.dispose(Object.values(p.batch));
  sm.dispose(Object.values(global));
  fs.rmSync(workdir, { recursive: true, force: true });
  if (env.worldSize > 1) sm.distributed.destroy();
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`bench distributed worker: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
