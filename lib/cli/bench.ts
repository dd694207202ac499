// `sparse-mixer bench ...`: the benchmark suite of bench/, as subcommands.
import * as fs from 'fs';
import * as path from 'path';
import type { Command } from 'commander';
import { nonNegativeNumber, positiveInt, positiveNumber } from './args';

/** Progress goes to stderr: stdout carries only the results (a table, or JSON with --json). */
const progress = (line: string) => console.error(line);

export function registerBenchCommands(program: Command): void {
  const bench = program.command('bench').description('benchmarks (see bench/)');
  bench
    .command('ops')
    .description('per-op overhead against Python PyTorch eager on the same libtorch, side by side')
    .option('--json', 'print one JSON object')
    .option('--python <path>', 'Python with torch, for the PyTorch peer', '/usr/bin/python3')
    .option('--rounds <n>', 'interleaved rounds per op (the median is reported)', positiveInt, 5)
    .option('--round-seconds <s>', 'target seconds per round and side', positiveNumber, 0.2)
    .option('--threads <n>', 'intra-op threads for both sides (default: all cores)', positiveInt)
    .option('--op <name...>', 'only these ops')
    .addHelpText('after', '\nExample:\n  $ sparse-mixer bench ops --json --rounds 7')
    .action(async (opts: { json?: boolean; python: string; rounds: number; roundSeconds: number; threads?: number; op?: string[] }) => {
      const { benchOps } = await import('../../bench/ops');
      const { getNumThreads } = await import('../tensor');
      const report = await benchOps({
        python: opts.python,
        rounds: opts.rounds,
        roundSeconds: opts.roundSeconds,
        threads: opts.threads ?? getNumThreads(),
        ...(opts.op ? { only: opts.op } : {}),
        log: progress,
      });
      if (opts.json) console.log(JSON.stringify(report, null, 2));
      else if (Number.isFinite(report.matmul_512.ours_gflops)) {
        const m = report.matmul_512;
        console.log(`matmul 512^3: ours ${m.ours_gflops.toFixed(1)} GFLOP/s, pytorch ${m.pytorch_gflops?.toFixed(1) ?? 'n/a'} GFLOP/s`);
      }
    });

  bench
    .command('moe')
    .description('MoE dispatch+combine, fused vs masked, and the layer vs its expert GEMMs, at base and small shapes')
    .option('--json', 'print one JSON object')
    .option('--repeats <n>', 'timed repetitions per measurement (the median is reported)', positiveInt, 3)
    .option('--device <device>', 'cpu or cuda', 'cpu')
    .option('--dtype <dtype>', 'float32, bfloat16 or float16', 'float32')
    .option('--shape <name...>', 'only these shapes (base cf=1.0, base cf=0.5, small cf=1.0)')
    .option('--batch-size <n>', 'sequences of each shape (default 8; a GPU needs more to be busy)', positiveInt)
    .option('--no-training-step', 'skip the end-to-end training step comparison')
    .option('--bandwidth-tokens <n>', 'tokens for the dispatch/combine bandwidth measurement, a multiple of 4096 (default: 32768 on CUDA, 4096 on the CPU)', positiveInt)
    .addHelpText('after', '\nExample:\n  $ sparse-mixer bench moe --json --repeats 5')
    .action(async (opts: { json?: boolean; repeats: number; device: string; dtype: string; shape?: string[]; trainingStep: boolean; bandwidthTokens?: number; batchSize?: number }) => {
      const { benchMoe } = await import('../../bench/moe');
      const report = benchMoe({
        repeats: opts.repeats,
        device: opts.device as never,
        dtype: opts.dtype as never,
        ...(opts.shape ? { shapes: opts.shape } : {}),
        trainingStep: opts.trainingStep,
        ...(opts.bandwidthTokens ? { bandwidthTokens: opts.bandwidthTokens } : {}),
        ...(opts.batchSize ? { batchSize: opts.batchSize } : {}),
        log: progress,
      });
      if (opts.json) console.log(JSON.stringify(report, null, 2));
      else for (const [k, v] of Object.entries(report.ratios)) console.log(`${k}: ${v.toFixed(2)}`);
    });

  bench
    .command('data')
    .description('tokenization and pre-training batch throughput, and the time a training step waits for data')
    .option('--json', 'print one JSON object')
    .option('--corpus <spec...>', 'corpus (files, folders, globs, sotu, moby-dick)', ['sotu', 'moby-dick'])
    .option('--vocab <file>', 'SentencePiece model (default: train one on the corpus first)')
    .option('--seconds <s>', 'seconds per throughput measurement', positiveNumber, 3)
    .option('--steps <n>', 'training steps for the wait measurement', positiveInt, 20)
    .addHelpText('after', '\nExample:\n  $ sparse-mixer bench data --json')
    .action(async (opts: { json?: boolean; corpus: string[]; vocab?: string; seconds: number; steps: number }) => {
      const { benchData } = await import('../../bench/data');
      const report = await benchData({ ...opts, log: progress });
      if (opts.json) console.log(JSON.stringify(report, null, 2));
    });

  bench
    .command('models')
    .description('training and inference throughput of the presets, ours vs the same models in PyTorch eager, with speed-ups over BERT')
    .option('--model <name...>', 'presets to run', ['bert-base', 'sparse-mixer', 'fast-sparse-mixer', 'bert-small', 'sparse-mixer-small', 'fast-sparse-mixer-small'])
    .option('--batch-size <n>', 'examples per step (default: 2 for base presets, 8 for -small/-quarter/-tiny)', positiveInt)
    .option('--seq-length <n>', 'sequence length (default: the preset\'s max_seq_length)', positiveInt)
    .option('--vocab-size <n>', 'vocabulary size', positiveInt, 32000)
    .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
    .option('--precision <p>', 'float32, or bfloat16 (autocast on CUDA)', 'float32')
    .option('--threads <n>', 'intra-op threads for both sides (default: all cores)', positiveInt)
    .option('--warmup <n>', 'untimed steps before timing', positiveInt, 1)
    .option('--repeats <n>', 'timed steps per pass and side (the median is reported)', positiveInt, 3)
    .option('--pass <pass...>', 'train and/or infer', ['train', 'infer'])
    .option('--python <path>', 'Python with torch, for the PyTorch peer', '/usr/bin/python3')
    .option('--no-peer', 'time ours only')
    .option('--peer-dispatch <impl>', "the peer's MoE dispatch: masked (the reference's) or scatter", 'masked')
    .option('--peer-runtime <r>', "the peer's process settings: default (a PyTorch user's) or ours (our OpenMP wait policy and malloc thresholds)", 'default')
    .option('--hf-bert', "also time Hugging Face transformers' BERT for BERT presets")
    .option('--breakdown', 'also profile one step of each pass into the time per part (ours and PyTorch\'s), with analytic FLOPs and bytes')
    .option('--out <dir>', 'write models.json, models.md and models.svg (and models-breakdown.svg) here')
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nExample:\n  $ sparse-mixer bench models --model bert-small sparse-mixer-small --repeats 5 --out bench-out')
    .action(async (opts: ModelsCliOptions) => {
      const { benchModels } = await import('../../bench/models');
      const { formatModelsTable, modelsMarkdown, modelsSvg } = await import('../../bench/models_report');
      const { breakdownSvg } = await import('../../bench/breakdown_report');
      const { getNumThreads } = await import('../tensor');
      const passes = opts.pass.map((p) => {
        if (p !== 'train' && p !== 'infer') throw new Error(`--pass must be train or infer, got '${p}'`);
        return p;
      });
      if (opts.precision !== 'float32' && opts.precision !== 'bfloat16') throw new Error(`--precision must be float32 or bfloat16, got '${opts.precision}'`);
      if (opts.peerDispatch !== 'masked' && opts.peerDispatch !== 'scatter') throw new Error(`--peer-dispatch must be masked or scatter, got '${opts.peerDispatch}'`);
      if (opts.peerRuntime !== 'default' && opts.peerRuntime !== 'ours') throw new Error(`--peer-runtime must be default or ours, got '${opts.peerRuntime}'`);
      const report = await benchModels({
        models: opts.model,
        ...(opts.batchSize ? { batchSize: opts.batchSize } : {}),
        ...(opts.seqLength ? { seqLength: opts.seqLength } : {}),
        vocabSize: opts.vocabSize,
        device: opts.device as never,
        precision: opts.precision,
        threads: opts.threads ?? getNumThreads(),
        warmup: opts.warmup,
        repeats: opts.repeats,
        passes,
        ...(opts.peer ? { python: opts.python } : {}),
        peerDispatch: opts.peerDispatch,
        peerRuntime: opts.peerRuntime,
        hfBert: opts.hfBert ?? false,
        breakdown: opts.breakdown ?? false,
        log: progress,
      });
      report.command = `sparse-mixer ${process.argv.slice(2).join(' ')}`;
      if (opts.out) {
        fs.mkdirSync(opts.out, { recursive: true });
        fs.writeFileSync(path.join(opts.out, 'models.json'), JSON.stringify(report, null, 2) + '\n');
        fs.writeFileSync(path.join(opts.out, 'models.md'), modelsMarkdown(report, 'models.svg'));
        fs.writeFileSync(path.join(opts.out, 'models.svg'), modelsSvg(report));
        if (opts.breakdown) fs.writeFileSync(path.join(opts.out, 'models-breakdown.svg'), breakdownSvg(report));
      }
      if (opts.json) console.log(JSON.stringify(report, null, 2));
      else console.log(`\n${formatModelsTable(report)}${opts.out ? `\n\nreport: ${path.join(opts.out, 'models.md')}` : ''}`);
    });
  bench
    .command('distributed')
    .description('training steps on several processes (data and expert parallel) against one process, and against PyTorch DDP on the same model')
    .option('--model <name...>', 'presets to run', ['bert-small', 'sparse-mixer-small'])
    .option('--batch-size <n>', 'examples per step over all processes', positiveInt, 8)
    .option('--seq-length <n>', "sequence length (default: the preset's max_seq_length)", positiveInt)
    .option('--vocab-size <n>', 'vocabulary size', positiveInt, 32000)
    .option('--processes <n>', 'processes of the parallel setups (1 thread each), and threads of the one-process setups', positiveInt, 2)
    .option('--warmup <n>', 'untimed steps per setup', positiveInt, 2)
    .option('--rounds <n>', 'rounds in which every setup takes its turn', positiveInt, 5)
    .option('--steps <n>', 'timed steps per setup and round (the median over all is reported)', positiveInt, 3)
    .option('--python <path>', 'Python with torch, for the PyTorch DDP peer', '/usr/bin/python3')
    .option('--no-peer', 'time ours only')
    .option('--peer-runtime <r>', "the peer's process settings: default (a PyTorch user's) or ours", 'default')
    .option('--peer-dispatch <impl>', "the peer's MoE dispatch: masked (the reference's) or scatter", 'masked')
    .option('--out <dir>', 'write distributed.json and distributed.md here')
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nExample:\n  $ sparse-mixer bench distributed --model bert-small sparse-mixer-small --rounds 5 --out bench-out')
    .action(async (opts: { model: string[]; batchSize: number; seqLength?: number; vocabSize: number; processes: number; warmup: number; rounds: number; steps: number; python: string; peer: boolean; peerRuntime: string; peerDispatch: string; out?: string; json?: boolean }) => {
      const { benchDistributed, formatDistributed } = await import('../../bench/distributed');
      if (opts.peerRuntime !== 'default' && opts.peerRuntime !== 'ours') throw new Error(`--peer-runtime must be default or ours, got '${opts.peerRuntime}'`);
      if (opts.peerDispatch !== 'masked' && opts.peerDispatch !== 'scatter') throw new Error(`--peer-dispatch must be masked or scatter, got '${opts.peerDispatch}'`);
      const report = await benchDistributed({
        models: opts.model,
        batchSize: opts.batchSize,
        ...(opts.seqLength ? { seqLength: opts.seqLength } : {}),
        vocabSize: opts.vocabSize,
        processes: opts.processes,
        warmup: opts.warmup,
        rounds: opts.rounds,
        steps: opts.steps,
        ...(opts.peer ? { python: opts.python } : {}),
        peerRuntime: opts.peerRuntime,
        peerDispatch: opts.peerDispatch,
        log: progress,
      });
      if (opts.out) {
        fs.mkdirSync(opts.out, { recursive: true });
        fs.writeFileSync(path.join(opts.out, 'distributed.json'), JSON.stringify(report, null, 2) + '\n');
        fs.writeFileSync(path.join(opts.out, 'distributed.md'), formatDistributed(report) + '\n');
      }
      console.log(opts.json ? JSON.stringify(report, null, 2) : `\n${formatDistributed(report)}`);
    });

  bench
    .command('quality')
    .description('quality at equal cost: each model pre-trained for the same wall-clock budget per run, learning rates swept per model, several seeds, fine-tuned on several tasks; resumable')
    .requiredOption('--data-dir <dir>', 'folder holding the GLUE task folders, e.g. ../shared/data (glue/SST-2, glue/MRPC)')
    .option('--model <name...>', 'presets to compare; the first is the baseline', ['bert-quarter', 'sparse-mixer-quarter'])
    .option('--task <name...>', 'fine-tuning tasks', ['glue/sst2', 'glue/mrpc'])
    .option('--seeds <n>', 'seeds per model (at least 2)', positiveInt, 3)
    .option('--budget <seconds>', 'pre-training seconds of every run (training steps and data waits; evaluations excluded)', positiveNumber, DEFAULT_QUALITY_BUDGET)
    .option('--pretrain-lr <lr...>', 'pre-training learning rates swept (default: 0.001 0.002)')
    .option('--finetune-lr <lr...>', 'fine-tuning learning rates swept per task (default: 0.0001 0.0003 0.001)')
    .option('--finetune-steps <n>', 'fine-tuning steps of every run', positiveInt, 50)
    .option('--holdout-rows <n>', 'training rows held out per task to choose the fine-tuning rate (at most a tenth of the split)', positiveInt, 400)
    .option('--vocab <file>', 'SentencePiece model (default: train one on sotu into the workdir)')
    .option('--corpus <spec>', 'pre-training corpus', 'sotu,moby-dick')
    .option('--workdir <dir>', 'runs and quality.json/.md/.svg; rerunning the same command continues the bench found there', 'sparse-mixer-quality')
    .option('--device <device>', 'cpu, cuda or cuda:N', 'cpu')
    .option('--json', 'print one JSON object')
    .addHelpText('after', `\nExample (about an hour on 2 CPU cores; stop it any time and rerun to continue):\n  $ nohup sparse-mixer bench quality --data-dir ../shared/data > quality.log 2>&1 &`)
    .action(async (opts: QualityCliOptions) => {
      const { benchQuality, formatQualityTable } = await import('../../bench/quality');
      const rates = (flag: string, values: string[] | undefined) => values?.map((v) => {
        const n = Number(v);
        if (!(n > 0) || !Number.isFinite(n)) throw new Error(`${flag} takes positive numbers, got '${v}'`);
        return n;
      });
      const pretrainLearningRates = rates('--pretrain-lr', opts.pretrainLr);
      const finetuneLearningRates = rates('--finetune-lr', opts.finetuneLr);
      const report = await benchQuality({
        models: opts.model,
        tasks: opts.task,
        seeds: opts.seeds,
        budgetSeconds: opts.budget,
        finetuneSteps: opts.finetuneSteps,
        holdoutRows: opts.holdoutRows,
        ...(pretrainLearningRates ? { pretrainLearningRates } : {}),
        ...(finetuneLearningRates ? { finetuneLearningRates } : {}),
        dataDir: opts.dataDir,
        corpus: opts.corpus,
        workdir: opts.workdir,
        device: opts.device,
        ...(opts.vocab ? { vocab: opts.vocab } : {}),
        log: progress,
      });
      console.log(opts.json ? JSON.stringify(report, null, 2) : `\n${formatQualityTable(report)}\n\nreport: ${path.join(opts.workdir, 'quality.md')}`);
    });
  bench
    .command('serve')
    .description('sparse-mixer serve under closed-loop clients at several concurrency levels, against offline predict on the same inputs')
    .option('--workdir <dir>', 'a fine-tuned workdir to serve (default: fine-tune --preset on spam once, in --train-dir)')
    .option('--train-dir <dir>', "where the bench's own model is trained and kept", 'sparse-mixer-bench-serve')
    .option('--preset <name>', "the bench's own model", 'sparse-mixer-small')
    .option('--train-steps <n>', "fine-tuning steps of the bench's own model", positiveInt, 30)
    .option('--concurrency <n...>', 'closed-loop clients per level', (v: string, prev: number[] | undefined) => [...(prev ?? []), positiveInt(v)])
    .option('--seconds <s>', 'measured seconds per level and round', positiveNumber, 8)
    .option('--warmup-seconds <s>', 'unmeasured seconds before each level', positiveNumber, 2)
    .option('--rounds <n>', 'interleaved rounds (medians are reported)', positiveInt, 3)
    .option('--inputs <n>', 'distinct inputs (spam dev mails), sent in turn', positiveInt, 256)
    .option('--max-batch-requests <n>', "the server's input cap per batch, and offline predict's batch size", positiveInt)
    .option('--max-wait-ms <ms>', "the server's batch wait", nonNegativeNumber)
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nExample:\n  $ sparse-mixer bench serve --rounds 3 --json')
    .action(async (opts: ServeCliOptions) => {
      const { benchServe, formatServeTable } = await import('../../bench/serve');
      const report = await benchServe({
        ...(opts.workdir ? { workdir: opts.workdir } : {}),
        trainDir: opts.trainDir,
        preset: opts.preset,
        trainSteps: opts.trainSteps,
        ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
        seconds: opts.seconds,
        warmupSeconds: opts.warmupSeconds,
        rounds: opts.rounds,
        inputs: opts.inputs,
        ...(opts.maxBatchRequests ? { maxBatchRequests: opts.maxBatchRequests } : {}),
        ...(opts.maxWaitMs !== undefined ? { maxWaitMs: opts.maxWaitMs } : {}),
        log: (line: string) => console.error(line), // progress on stderr: stdout carries the results
      });
      report.command = `sparse-mixer ${process.argv.slice(2).join(' ')}`;
      console.log(opts.json ? JSON.stringify(report, null, 2) : `\n${formatServeTable(report)}`);
    });
}

interface ServeCliOptions {
  workdir?: string;
  trainDir: string;
  preset: string;
  trainSteps: number;
  concurrency?: number[];
  seconds: number;
  warmupSeconds: number;
  rounds: number;
  inputs: number;
  maxBatchRequests?: number;
  maxWaitMs?: number;
  json?: boolean;
}

/** Pre-training seconds per run of `bench quality`: the whole bench then takes about an hour on 2 CPU cores. */
const DEFAULT_QUALITY_BUDGET = 150;

interface QualityCliOptions {
  dataDir: string;
  model: string[];
  task: string[];
  seeds: number;
  budget: number;
  pretrainLr?: string[];
  finetuneLr?: string[];
  finetuneSteps: number;
  holdoutRows: number;
  vocab?: string;
  corpus: string;
  workdir: string;
  device: string;
  json?: boolean;
}

interface ModelsCliOptions {
  model: string[];
  batchSize?: number;
  seqLength?: number;
  vocabSize: number;
  device: string;
  precision: string;
  threads?: number;
  warmup: number;
  repeats: number;
  pass: string[];
  python: string;
  peer: boolean;
  peerDispatch: string;
  peerRuntime: string;
  hfBert?: boolean;
  breakdown?: boolean;
  out?: string;
  json?: boolean;
}
