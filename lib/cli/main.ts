#!/usr/bin/env node
// The sparse-mixer command-line program.
import { Command, InvalidArgumentError } from 'commander';
import { doctorReport, formatDoctor } from './doctor';
import { runSmoke } from './smoke';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got '${value}'`);
  return n;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!(n > 0)) throw new InvalidArgumentError(`expected a positive number, got '${value}'`);
  return n;
}

export function buildProgram(): Command {
  const program = new Command('sparse-mixer')
    .description('Pre-train, fine-tune, serve and benchmark Sparse Mixer encoders on libtorch')
    .showHelpAfterError();

  program
    .command('doctor')
    .description('report libtorch, CUDA, BLAS and thread settings, and what to fix')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  $ sparse-mixer doctor --json')
    .action((opts: { json?: boolean }) => {
      const report = doctorReport();
      console.log(opts.json ? JSON.stringify(report, null, 2) : formatDoctor(report));
    });

  program
    .command('smoke')
    .description('a few-second end-to-end check: fit a small network with autograd')
    .option('--steps <n>', 'gradient steps', positiveInt, 300)
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  $ sparse-mixer smoke --steps 300')
    .action((opts: { steps: number; json?: boolean }) => {
      const result = runSmoke(opts.steps, opts.json ? undefined : (line) => console.log(line));
      if (opts.json) console.log(JSON.stringify(result));
      else console.log(`loss ${result.initialLoss.toFixed(4)} -> ${result.finalLoss.toFixed(4)}; live tensors ${result.liveTensorsBefore} -> ${result.liveTensorsAfter}`);
      if (!(result.finalLoss < result.initialLoss / 10)) {
        console.error('smoke: the loss did not fall tenfold');
        process.exitCode = 1;
      }
    });

  program
    .command('model-info')
    .description('parameter counts, the layer table and forward FLOPs per token of a preset')
    .requiredOption('--preset <name>', 'model preset (bert-base, sparse-mixer, fast-sparse-mixer, and -small/-tiny)')
    .option('--vocab-size <n>', 'vocabulary size', positiveInt)
    .option('--max-seq-length <n>', 'sequence length', positiveInt)
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  $ sparse-mixer model-info --preset sparse-mixer --vocab-size 32000 --json')
    .action(async (opts: { preset: string; vocabSize?: number; maxSeqLength?: number; json?: boolean }) => {
      const { presetConfig, modelInfo, formatModelInfo } = await import('../model');
      const overrides: Record<string, number> = {};
      if (opts.vocabSize !== undefined) overrides['vocab_size'] = opts.vocabSize;
      if (opts.maxSeqLength !== undefined) overrides['max_seq_length'] = opts.maxSeqLength;
      const info = modelInfo(presetConfig(opts.preset, overrides));
      console.log(opts.json ? JSON.stringify({ preset: opts.preset, ...info }, null, 2) : formatModelInfo(info, opts.preset));
    });

  program
    .command('vocab')
    .description('train a SentencePiece vocabulary with [CLS], [SEP], [MASK] and a pad id')
    .option('--corpus <spec...>', 'files, folders, globs, or the built-in corpora sotu and moby-dick', ['sotu'])
    .requiredOption('--output <file>', 'where to write the .model file')
    .option('--vocab-size <n>', 'number of pieces', positiveInt, 8000)
    .option('--model-type <type>', 'bpe or unigram', 'bpe')
    .option('--character-coverage <x>', 'share of characters covered', positiveNumber, 0.9995)
    .option('--max-sentences <n>', 'lines used for training at most', positiveInt, 1_000_000)
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  $ sparse-mixer vocab --corpus sotu moby-dick --vocab-size 8000 --output vocab.model')
    .action(async (opts: { corpus: string[]; output: string; vocabSize: number; modelType: string; characterCoverage: number; maxSentences: number; json?: boolean }) => {
      if (opts.modelType !== 'bpe' && opts.modelType !== 'unigram') throw new InvalidArgumentError(`--model-type must be bpe or unigram, got '${opts.modelType}'`);
      const { trainVocab } = await import('../data');
      const result = await trainVocab({ ...opts, modelType: opts.modelType }, opts.json ? () => {} : (line) => console.log(line));
      console.log(opts.json ? JSON.stringify(result) : `wrote ${result.output}`);
    });

  program
    .command('train')
    .description('pre-train or fine-tune (mode in the config); resumes from the latest checkpoint in the workdir')
    .requiredOption('--config <name|preset|file>', "'pretraining', 'classification', a model preset, or a .json/.js config file")
    .requiredOption('--workdir <dir>', 'checkpoints, summaries and config.json go here')
    .option('--vocab <file>', 'SentencePiece model (the original spelling --vocab_filepath works too)')
    .option('--set <key=value...>', 'override config fields (also --config.key=value)', [])
    .option('--force', 'continue a workdir whose config differs')
    .option('--json', 'print the final result as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  $ sparse-mixer train --config pretraining --workdir runs/pt --vocab vocab.model --set preset=sparse-mixer-small num_train_steps=2000\n' +
        '  $ sparse-mixer train --config classification --workdir runs/rte --vocab_filepath vocab.model --config.dataset_name=glue/rte --config.init_checkpoint_dir=runs/pt',
    )
    .action(async (opts: { config: string; workdir: string; vocab?: string; set: string[]; force?: boolean; json?: boolean }) => {
      const { resolveTrainConfig, runTraining } = await import('./train');
      const result = await runTraining(resolveTrainConfig(opts.config, opts.vocab, opts.set), opts.workdir, opts.force ?? false);
      const summary = { workdir: result.workdir, step: result.step, stopped: result.stopped, eval: result.eval };
      console.log(opts.json ? JSON.stringify(summary) : `finished at step ${result.step} (${result.stopped}); workdir ${result.workdir}`);
    });

  program
    .command('eval')
    .description("evaluate a fine-tuned workdir on its task's dev (or another) split, writing predictions")
    .requiredOption('--workdir <dir>', 'a fine-tuning workdir')
    .option('--split <name>', "split to evaluate (default: the task's dev split)")
    .option('--output <file>', 'predictions file (default: <workdir>/predictions-<split>-step<N>.jsonl)')
    .option('--step <n>', 'checkpoint step (default: the latest)', positiveInt)
    .addHelpText('after', '\nExample:\n  $ sparse-mixer eval --workdir runs/rte --split dev')
    .action(async (opts: { workdir: string; split?: string; output?: string; step?: number }) => {
      const { evaluateWorkdir } = await import('./serve');
      console.log(JSON.stringify(await evaluateWorkdir(opts.workdir, opts)));
    });

  program
    .command('predict')
    .description('labels and scores for texts, one JSON line each')
    .requiredOption('--workdir <dir>', 'a fine-tuning workdir')
    .option('--text <text...>', 'texts to classify (one segment each)', [])
    .option('--input <file>', 'a file of plain text lines, or JSON lines holding a string or an array of segments')
    .addHelpText('after', '\nExample:\n  $ sparse-mixer predict --workdir runs/spam --text "WIN A FREE CRUISE, reply now" "Meeting moved to 3pm"')
    .action(async (opts: { workdir: string; text: string[]; input?: string }) => {
      const { readInputs } = await import('./serve');
      const { Predictor } = await import('../train');
      const inputs = readInputs(opts.text, opts.input);
      const predictor = Predictor.load(opts.workdir);
      try {
        const predictions = await predictor.predict(inputs);
        for (const [i, p] of predictions.entries()) console.log(JSON.stringify({ input: inputs[i], ...p }));
      } finally {
        predictor.dispose();
      }
    });

  program
    .command('quickstart')
    .description('train a vocabulary on sotu, pre-train sparse-mixer-tiny on sotu + moby-dick, fine-tune on spam')
    .option('--workdir <dir>', 'where everything goes', 'sparse-mixer-quickstart')
    .option('--pretrain-steps <n>', 'pre-training steps', positiveInt, 300)
    .option('--finetune-epochs <n>', 'fine-tuning epochs', positiveNumber, 3)
    .option('--json', 'print the dev metrics as JSON')
    .addHelpText('after', '\nExample:\n  $ sparse-mixer quickstart --workdir /tmp/quickstart')
    .action(async (opts: { workdir: string; pretrainSteps: number; finetuneEpochs: number; json?: boolean }) => {
      const { quickstart } = await import('./quickstart');
      const started = Date.now();
      const r = await quickstart({ ...opts, log: opts.json ? () => {} : (line) => console.log(line) });
      const minutes = ((Date.now() - started) / 60000).toFixed(1);
      if (opts.json) console.log(JSON.stringify({ ...r, minutes: Number(minutes) }));
      else console.log(`spam dev: ${Object.entries(r.metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}; ${minutes} min; workdir ${r.workdir}`);
    });

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
        log: opts.json ? (line) => console.error(line) : (line) => console.log(line),
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
    .option('--no-training-step', 'skip the end-to-end training step comparison')
    .addHelpText('after', '\nExample:\n  $ sparse-mixer bench moe --json --repeats 5')
    .action(async (opts: { json?: boolean; repeats: number; device: string; dtype: string; shape?: string[]; trainingStep: boolean }) => {
      const { benchMoe } = await import('../../bench/moe');
      const report = benchMoe({
        repeats: opts.repeats,
        device: opts.device as never,
        dtype: opts.dtype as never,
        ...(opts.shape ? { shapes: opts.shape } : {}),
        trainingStep: opts.trainingStep,
        log: opts.json ? (line) => console.error(line) : (line) => console.log(line),
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
      const report = await benchData({ ...opts, log: opts.json ? (line) => console.error(line) : (line) => console.log(line) });
      if (opts.json) console.log(JSON.stringify(report, null, 2));
    });

  return program;
}

if (require.main === module) {
  Promise.resolve()
    .then(async () => buildProgram().parseAsync((await import('./train')).translateOriginalFlags(process.argv)))
    .catch((error: unknown) => {
      console.error(`sparse-mixer: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    });
}
