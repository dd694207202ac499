#!/usr/bin/env node
// The sparse-mixer command-line program.
import * as fs from 'fs';
import * as path from 'path';
import { Command, InvalidArgumentError } from 'commander';
import { printable } from '../util/excerpt';
import { nonNegativeInt, positiveInt, positiveNumber } from './args';
import { registerBenchCommands } from './bench';
import { doctorReport, formatDoctor } from './doctor';
import { registerServeCommand } from './serve';
import { runSmoke } from './smoke';

/** This package's version, from its package.json (two folders above dist/lib/cli). */
function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
}

export function buildProgram(): Command {
  const program = new Command('sparse-mixer')
    .description('Pre-train, fine-tune, serve and benchmark Sparse Mixer encoders on libtorch')
    .version(packageVersion(), '-V, --version', 'print the version')
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
      const result = runSmoke(opts.steps, opts.json ? undefined : (line) => console.error(line));
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
      const result = await trainVocab({ ...opts, modelType: opts.modelType }, opts.json ? () => {} : (line) => console.error(line));
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
    .option('--nproc-per-node <n>', 'start this many worker processes on this machine (torchrun style; threads are split between them)', positiveInt)
    .option('--nnodes <n>', 'machines taking part (run the same command on each, with its --node-rank)', positiveInt)
    .option('--node-rank <k>', "this machine's index among them, 0 on the machine that hosts the rendezvous", nonNegativeInt)
    .option('--master-addr <host>', 'address of node 0, where rank 0 hosts the rendezvous store (default: MASTER_ADDR or 127.0.0.1)')
    .option('--master-port <port>', 'its port (default: MASTER_PORT or 29500)', positiveInt)
    .addHelpText(
      'after',
      '\nExamples:\n  $ sparse-mixer train --config pretraining --workdir runs/pt --vocab vocab.model --set preset=sparse-mixer-small num_train_steps=2000\n' +
        '  $ sparse-mixer train --config classification --workdir runs/rte --vocab_filepath vocab.model --config.dataset_name=glue/rte --config.init_checkpoint_dir=runs/pt\n' +
        '  $ sparse-mixer train --nproc-per-node 2 --config pretraining --workdir runs/pt2 --vocab vocab.model --set expert_parallel_size=2',
    )
    .action(async (opts: { config: string; workdir: string; vocab?: string; set: string[]; force?: boolean; json?: boolean; nprocPerNode?: number; nnodes?: number; nodeRank?: number; masterAddr?: string; masterPort?: number }) => {
      const { resolveTrainConfig, runTraining, withoutLauncherFlags } = await import('./train');
      const { LAUNCHER_PID_ENV, launch } = await import('../distributed');
      const config = resolveTrainConfig(opts.config, opts.vocab, opts.set); // a bad config fails here, before any worker starts
      if ((opts.nprocPerNode !== undefined || opts.nnodes !== undefined) && !process.env[LAUNCHER_PID_ENV]) {
        const result = await launch({
          nprocPerNode: opts.nprocPerNode ?? 1,
          nnodes: opts.nnodes,
          nodeRank: opts.nodeRank,
          masterAddr: opts.masterAddr,
          masterPort: opts.masterPort,
          command: process.execPath,
          args: [process.argv[1]!, ...withoutLauncherFlags(process.argv.slice(2))],
        });
        process.exitCode = result.exitCode;
        return;
      }
      const result = await runTraining(config, opts.workdir, opts.force ?? false);
      if (result.rank !== 0) return; // rank 0 speaks for the run
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
      const { evaluateWorkdir } = await import('./predict');
      console.log(JSON.stringify(await evaluateWorkdir(opts.workdir, opts)));
    });

  program
    .command('predict')
    .description('labels and scores for texts, one JSON line each')
    .requiredOption('--workdir <dir>', 'a fine-tuning workdir')
    .option('--text <text...>', 'texts to classify (one segment each)', [])
    .option('--input <file>', 'a file of plain text lines, or JSON lines holding a string or an array of segments')
    .option('--skip-bad-rows', 'answer the good inputs and list the bad ones on stderr, instead of stopping at the first')
    .addHelpText('after', '\nExample:\n  $ sparse-mixer predict --workdir runs/spam --text "WIN A FREE CRUISE, reply now" "Meeting moved to 3pm"')
    .action(async (opts: { workdir: string; text: string[]; input?: string; skipBadRows?: boolean }) => {
      const { readInputs } = await import('./predict');
      const { Predictor } = await import('../train');
      const predictor = Predictor.load(opts.workdir);
      try {
        const { rows, skipped } = readInputs(opts.text, opts.input, { segments: predictor.task.segmentNames.length, skipBadRows: opts.skipBadRows ?? false });
        for (const s of skipped) console.error(`skipped ${s.where}: ${s.reason}`);
        const predictions = rows.length ? await predictor.predict(rows.map((r) => r.input)) : [];
        for (const [i, p] of predictions.entries()) console.log(JSON.stringify({ input: rows[i]!.input, ...p }));
        if (skipped.length) console.error(`${predictions.length} input(s) answered, ${skipped.length} skipped`);
      } finally {
        predictor.dispose();
      }
    });

  registerServeCommand(program);

  program
    .command('quickstart')
    .description('train a vocabulary on sotu, pre-train sparse-mixer-tiny on sotu + moby-dick, fine-tune on spam')
    .option('--workdir <dir>', 'where everything goes', 'sparse-mixer-quickstart')
    .option('--pretrain-steps <n>', 'pre-training steps', positiveInt, 300)
    .option('--finetune-epochs <n>', 'fine-tuning epochs', positiveNumber, 3)
    .option('--seed <n>', "seed of the models' initialisation, dropout and data order", nonNegativeInt, 0)
    .option('--json', 'print the dev metrics as JSON')
    .addHelpText('after', '\nExample:\n  $ sparse-mixer quickstart --workdir /tmp/quickstart')
    .action(async (opts: { workdir: string; pretrainSteps: number; finetuneEpochs: number; seed: number; json?: boolean }) => {
      const { quickstart } = await import('./quickstart');
      const started = Date.now();
      const r = await quickstart({ ...opts, log: opts.json ? () => {} : (line) => console.error(line) });
      const minutes = ((Date.now() - started) / 60000).toFixed(1);
      if (opts.json) console.log(JSON.stringify({ ...r, minutes: Number(minutes) }));
      else console.log(`spam dev: ${Object.entries(r.metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}; ${minutes} min; workdir ${r.workdir}`);
    });

  registerBenchCommands(program);

  return program;
}

if (require.main === module) {
  Promise.resolve()
    .then(async () => buildProgram().parseAsync((await import('./train')).translateOriginalFlags(process.argv)))
    .catch((error: unknown) => {
      // Messages can quote files and arguments: nothing in them may drive the terminal.
      console.error(printable(`sparse-mixer: ${error instanceof Error ? error.message : String(error)}`));
      process.exitCode = 1;
    });
}
