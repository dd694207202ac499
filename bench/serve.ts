// `sparse-mixer bench serve`: `sparse-mixer serve` (its own process, as deployed) under closed-loop
// clients at several concurrency levels, against offline predict on the same inputs in this process
// (the limit: the same model and batch size without HTTP, JSON or queueing). Rounds interleave the
// offline run and every level, because this machine is shared and its speed drifts.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as sm from '../lib';
import { closedLoop, percentile } from './serve_clients';
import { median } from './timing';

export interface ServeBenchOptions {
  /** A fine-tuned workdir to serve (default: a model the bench fine-tunes once in trainDir and reuses). */
  workdir?: string;
  trainDir?: string;
  /** Preset and steps of the bench's own model (default sparse-mixer-small, 30 steps on spam). */
  preset?: string;
  trainSteps?: number;
  concurrency?: number[];
  /** Measured seconds per level and round, after warmupSeconds. */
  seconds?: number;
  warmupSeconds?: number;
  rounds?: number;
  /** Distinct inputs (spam dev mails), sent in turn. */
  inputs?: number;
  maxBatchRequests?: number;
  maxBatchTokens?: number;
  maxWaitMs?: number;
  log?: (line: string) => void;
}

export interface ServeBenchRow {
  /** Clients, or 0 for offline predict. */
  concurrency: number;
  /** Offline predict's batch size (null for the server's rows). */
  offline_batch: number | null;
  requests_per_sec: number;
  tokens_per_sec: number;
  /** Medians over the rounds of each round's latency percentiles (null for offline rows). */
  p50_ms: number | null;
  p99_ms: number | null;
  mean_batch: number;
  vs_offline: number;
  /** Requests per second of each round (the median is reported). */
  per_round: number[];
}

export interface ServeBenchReport {
  settings: Required<Omit<ServeBenchOptions, 'log' | 'trainDir'>> & { threads: number; cpu: string; load_average: number[] };
  rows: ServeBenchRow[];
  targets: { name: string; value: number; target: string; met: boolean }[];
  /** Offline throughput in batches of maxBatchRequests over one by one: what batching can gain here. */
  offline_batching_gain: number;
  command?: string;
}

const cli = path.resolve(__dirname, '..', 'lib', 'cli', 'main.js');

/** The value of an unlabelled sample in Prometheus text, e.g. sparse_mixer_batch_inputs_sum. */
export function sampleValue(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`no sample ${name} in the metrics`);
  return Number(m[1]);
}

/** The bench's own model: a vocabulary on sotu and `preset` fine-tuned on spam; reused when there. */
async function benchModel(dir: string, preset: string, steps: number, log: (line: string) => void): Promise<string> {
  const workdir = path.join(dir, `${preset}-spam`);
  if (new sm.train.checkpoint.CheckpointStore(path.join(workdir, 'checkpoints'), { keep: 1 }).latest()) return workdir;
  const vocab = path.join(dir, 'vocab.model');
  if (!fs.existsSync(vocab)) await sm.data.trainVocab({ corpus: ['sotu'], output: vocab, vocabSize: 8000, modelType: 'bpe', characterCoverage: 0.9995, maxSentences: 1_000_000 }, log);
  log(`fine-tuning ${preset} on spam for ${steps} steps in ${workdir}`);
  const config = sm.train.trainConfig({ mode: 'classification', preset, vocab_filepath: vocab, dataset_name: 'spam', train_batch_size: 16, eval_batch_size: 64, num_train_steps: steps, eval_frequency: steps, learning_rate: 1e-3 });
  await sm.train.finetune(config, { workdir, force: true, log });
  return workdir;
}

/** `sparse-mixer serve` in a process of its own; resolves once it listens. */
function startServer(args: string[]): Promise<{ url: string; stop: () => Promise<number | null> }> {
  // Its log lines (on stderr) say where it listens.
  const child = spawn(process.execPath, [cli, 'serve', ...args, '--port', '0'], { stdio: ['ignore', 'inherit', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/\S+):/.exec(out);
      if (m) resolve({ url: m[1]!, stop: () => (child.kill('SIGTERM'), exited) });
    });
    void exited.then((code) => reject(new Error(`sparse-mixer serve exited (${code}) before listening: ${out}`)));
  });
}

async function inputsPerSecond(predictor: sm.train.Predictor, texts: string[]): Promise<number> {
  const started = performance.now();
  await predictor.predict(texts);
  return texts.length / ((performance.now() - started) / 1000);
}

async function scrape(url: string): Promise<{ inputs: number; batches: number; tokens: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return { inputs: sampleValue(text, 'sparse_mixer_batch_inputs_sum'), batches: sampleValue(text, 'sparse_mixer_batch_inputs_count'), tokens: sampleValue(text, 'sparse_mixer_input_tokens_total') };
}

export async function benchServe(options: ServeBenchOptions = {}): Promise<ServeBenchReport> {
  const log = options.log ?? ((line: string) => console.log(line));
  const o = {
    preset: options.preset ?? 'sparse-mixer-small',
    trainSteps: options.trainSteps ?? 30,
    concurrency: options.concurrency ?? [1, 8, 32, 128],
    seconds: options.seconds ?? 8,
    warmupSeconds: options.warmupSeconds ?? 2,
    rounds: options.rounds ?? 3,
    inputs: options.inputs ?? 256,
    maxBatchRequests: options.maxBatchRequests ?? sm.serve.SERVE_DEFAULTS.maxBatchRequests,
    maxBatchTokens: options.maxBatchTokens ?? sm.serve.SERVE_DEFAULTS.maxBatchTokens,
    maxWaitMs: options.maxWaitMs ?? sm.serve.SERVE_DEFAULTS.maxWaitMs,
  };
  const workdir = options.workdir ?? (await benchModel(options.trainDir ?? 'sparse-mixer-bench-serve', o.preset, o.trainSteps, log));
  const texts = sm.data.tasks.getTask('spam').read('', 'dev').examples.slice(0, o.inputs).map((e) => e.segments[0]!);
  const bodies = texts.map((t) => JSON.stringify({ inputs: t, truncate: true }));

  // Offline: the same inputs through Predictor.predict, in batches of the server's cap, and (fewer of
  // them) one at a time: the ratio of the two is what batching can gain on this machine.
  const predictor = sm.train.Predictor.load(workdir, { batchSize: o.maxBatchRequests });
  const oneByOne = sm.train.Predictor.load(workdir, { batchSize: 1 });
  const singles = texts.slice(0, Math.min(64, texts.length));
  const offlineTokens = (await predictor.encode(texts.map((t) => [t]))).reduce((n, e) => n + e.length, 0);
  const server = await startServer([
    '--workdir', workdir,
    '--max-batch-requests', String(o.maxBatchRequests),
    '--max-batch-tokens', String(o.maxBatchTokens),
    '--max-wait-ms', String(o.maxWaitMs),
    '--max-concurrent-requests', String(Math.max(512, 2 * Math.max(...o.concurrency))),
  ]);
  const offline: number[] = [];
  const offlineSingle: number[] = [];
  // Latency percentiles are taken per round (the machine's speed drifts between rounds), then the median.
  const levels = new Map(o.concurrency.map((c) => [c, { rps: [] as number[], tps: [] as number[], p50: [] as number[], p99: [] as number[], inputs: 0, batches: 0 }]));
  try {
    for (let round = 1; round <= o.rounds; round++) {
      offline.push(await inputsPerSecond(predictor, texts));
      offlineSingle.push(await inputsPerSecond(oneByOne, singles));
      log(`round ${round}: offline predict ${offline.at(-1)!.toFixed(1)} inputs/s in batches of ${o.maxBatchRequests}, ${offlineSingle.at(-1)!.toFixed(1)} one by one`);
      for (const c of o.concurrency) {
        const edges: Record<string, { inputs: number; batches: number; tokens: number }> = {};
        const r = await closedLoop(`${server.url}/predict`, bodies, c, o.warmupSeconds, o.seconds, async (edge) => void (edges[edge] = await scrape(server.url)));
        if (r.errors) throw new Error(`${r.errors} requests failed at concurrency ${c}`);
        const level = levels.get(c)!;
        level.rps.push(r.completed / r.windowSeconds);
        level.tps.push((edges['close']!.tokens - edges['open']!.tokens) / r.windowSeconds);
        level.p50.push(percentile(r.latenciesMs, 0.5));
        level.p99.push(percentile(r.latenciesMs, 0.99));
        level.inputs += edges['close']!.inputs - edges['open']!.inputs;
        level.batches += edges['close']!.batches - edges['open']!.batches;
        log(`round ${round}: ${c} clients ${level.rps.at(-1)!.toFixed(1)} requests/s, p50 ${level.p50.at(-1)!.toFixed(0)} ms, p99 ${level.p99.at(-1)!.toFixed(0)} ms`);
      }
    }
  } finally {
    predictor.dispose();
    oneByOne.dispose();
    await server.stop();
  }

  const offlineRps = median(offline);
  const offlineRow = (batch: number, perRound: number[]): ServeBenchRow => {
    const rps = median(perRound);
    return { concurrency: 0, offline_batch: batch, requests_per_sec: rps, tokens_per_sec: (rps * offlineTokens) / texts.length, p50_ms: null, p99_ms: null, mean_batch: batch, vs_offline: rps / offlineRps, per_round: perRound };
  };
  const rows: ServeBenchRow[] = [
    offlineRow(o.maxBatchRequests, offline),
    offlineRow(1, offlineSingle),
    ...[...levels].map(([c, l]) => ({
      concurrency: c,
      offline_batch: null,
      requests_per_sec: median(l.rps),
      tokens_per_sec: median(l.tps),
      p50_ms: median(l.p50),
      p99_ms: median(l.p99),
      mean_batch: l.inputs / l.batches,
      vs_offline: median(l.rps) / offlineRps,
      per_round: l.rps,
    })),
  ];
  const settings = { ...o, workdir, threads: sm.getNumThreads(), cpu: os.cpus()[0]?.model ?? 'unknown', load_average: os.loadavg() };
  return { settings, rows, targets: targets(rows), offline_batching_gain: offlineRps / median(offlineSingle) };
}

/** The issue's targets at 32 clients: ≥ 80% of offline, ≥ 5× one client, p99 ≤ 3× p50. */
function targets(rows: ServeBenchRow[]): ServeBenchReport['targets'] {
  const at = (c: number) => rows.find((r) => r.concurrency === c);
  const c32 = at(32);
  const c1 = at(1);
  if (!c32) return [];
  const out = [{ name: 'throughput at 32 clients / offline', value: c32.vs_offline, target: '>= 0.80', met: c32.vs_offline >= 0.8 }];
  if (c1) out.push({ name: 'throughput at 32 clients / 1 client', value: c32.requests_per_sec / c1.requests_per_sec, target: '>= 5', met: c32.requests_per_sec / c1.requests_per_sec >= 5 });
  out.push({ name: 'p99 / p50 latency at 32 clients', value: c32.p99_ms! / c32.p50_ms!, target: '<= 3', met: c32.p99_ms! / c32.p50_ms! <= 3 });
  return out;
}

export function formatServeTable(report: ServeBenchReport): string {
  const f = (x: number | null, digits = 1) => (x === null ? '–' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
  const lines = [
    '| clients | requests/s | tokens/s | p50 ms | p99 ms | p99/p50 | mean batch | vs offline |',
    '|---|---|---|---|---|---|---|---|',
    ...report.rows.map((r) =>
      `| ${r.offline_batch !== null ? `offline predict, batches of ${r.offline_batch}` : r.concurrency} | ${f(r.requests_per_sec)} | ${f(r.tokens_per_sec, 0)} | ${f(r.p50_ms, 0)} | ${f(r.p99_ms, 0)} | ${r.p50_ms ? f(r.p99_ms! / r.p50_ms, 2) : '–'} | ${f(r.mean_batch)} | ${f(r.vs_offline, 2)} |`,
    ),
    '',
    `batching on this machine: offline predict in batches of ${report.settings.maxBatchRequests} is ${report.offline_batching_gain.toFixed(2)}× one by one`,
    ...report.targets.map((t) => `${t.met ? 'met' : 'NOT met'}: ${t.name} = ${t.value.toFixed(2)} (target ${t.target})`),
  ];
  return lines.join('\n');
}
