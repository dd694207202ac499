// `sparse-mixer train`: the original's `main.py --config --workdir --vocab_filepath`, on our runs.
import * as fs from 'fs';
import * as path from 'path';
import { PRESET_NAMES } from '../model';
import { finetune, parseOverrides, pretrain, trainConfig, type RunResult, type TrainConfig } from '../train';

/** The configs shipped in configs/ (compiled to dist/configs). */
function builtinConfig(name: string): Record<string, unknown> | undefined {
  const file = path.resolve(__dirname, '..', '..', 'configs', `${name}.js`);
  if (!fs.existsSync(file)) return undefined;
  return (require(file) as { getConfig(): Record<string, unknown> }).getConfig();
}

/** --config: 'pretraining', 'classification', a model preset, or a .json / .js config file. */
export function loadConfigSource(spec: string): Record<string, unknown> {
  const builtin = builtinConfig(spec);
  if (builtin) return builtin;
  if (PRESET_NAMES.includes(spec)) return { mode: 'pretraining', preset: spec };
  if (!fs.existsSync(spec)) {
    throw new Error(`--config ${spec}: not a built-in config (pretraining, classification), a preset (${PRESET_NAMES.join(', ')}) or a file`);
  }
  if (spec.endsWith('.json')) return JSON.parse(fs.readFileSync(spec, 'utf8')) as Record<string, unknown>;
  const loaded = require(path.resolve(spec)) as { getConfig?: () => Record<string, unknown>; default?: Record<string, unknown> } & Record<string, unknown>;
  return loaded.getConfig ? loaded.getConfig() : (loaded.default ?? loaded);
}

export function resolveTrainConfig(spec: string, vocab: string | undefined, overrides: readonly string[]): TrainConfig {
  const values = { ...loadConfigSource(spec), ...parseOverrides(overrides) };
  if (vocab) values['vocab_filepath'] = vocab;
  return trainConfig(values);
}

/**
 * Runs the config's training. Under a launcher or a cluster that set WORLD_SIZE > 1, this process
 * first joins the others (c10d rendezvous at MASTER_ADDR:MASTER_PORT) and leaves at the end.
 */
export async function runTraining(config: TrainConfig, workdir: string, force: boolean): Promise<RunResult & { rank: number }> {
  const options = { workdir, force };
  const { bindToLauncher, destroy, init, launchEnvironment } = await import('../distributed');
  bindToLauncher();
  const env = launchEnvironment();
  if (env.worldSize > 1) init();
  try {
    const result = await (config.mode === 'pretraining' ? pretrain(config, options) : finetune(config, options));
    return { ...result, rank: env.rank };
  } finally {
    if (env.worldSize > 1) destroy();
  }
}

/** The launcher's own flags, which its workers must not see again. */
export const LAUNCHER_FLAGS = ['--nproc-per-node', '--nnodes', '--node-rank', '--master-addr', '--master-port'];

export function withoutLauncherFlags(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const flag = LAUNCHER_FLAGS.find((f) => arg === f || arg.startsWith(`${f}=`));
    if (!flag) out.push(arg);
    else if (arg === flag) i++; // its value follows
  }
  return out;
}

/** The original's spellings: --config.FIELD=VALUE becomes --set FIELD=VALUE, --vocab_filepath becomes --vocab. */
export function translateOriginalFlags(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const dotted = /^--config\.([A-Za-z_][\w]*)(?:=(.*))?$/.exec(arg);
    if (dotted) {
      const value = dotted[2] ?? argv[++i];
      if (value === undefined) throw new Error(`${arg} needs a value`);
      out.push('--set', `${dotted[1]}=${value}`);
    } else if (arg === '--vocab_filepath' || arg.startsWith('--vocab_filepath=')) {
      out.push('--vocab', ...(arg.includes('=') ? [arg.slice(arg.indexOf('=') + 1)] : []));
    } else {
      out.push(arg);
    }
  }
  return out;
}
