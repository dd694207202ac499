// `sparse-mixer train`: the original's `main.py --config --workdir --vocab_filepath`, on our runs.
import * as fs from 'fs';
import * as path from 'path';
import { PRESET_NAMES } from '../model';
import { finetune, parseOverrides, pretrain, trainConfig, type RunResult, type TrainConfig } from '../train';
import { showValue } from '../util/excerpt';

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
  if (fs.statSync(spec).isDirectory()) throw new Error(`--config ${spec}: is a folder, not a config file`);
  if (spec.endsWith('.json')) {
    let json: unknown;
    try {
      json = JSON.parse(fs.readFileSync(spec, 'utf8'));
    } catch (e) {
      throw new Error(`--config ${spec}: not valid JSON (${showValue((e as Error).message, 120)})`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`--config ${spec}: not a JSON object of config fields`);
    return json as Record<string, unknown>;
  }
  let loaded: { getConfig?: () => Record<string, unknown>; default?: Record<string, unknown> } & Record<string, unknown>;
  try {
    loaded = require(path.resolve(spec)) as typeof loaded;
  } catch (e) {
    throw new Error(`--config ${spec}: cannot load it as a JavaScript config module (${showValue((e as Error).message.split('\n')[0], 160)})`);
  }
  const config = typeof loaded.getConfig === 'function' ? loaded.getConfig() : (loaded.default ?? loaded);
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new Error(`--config ${spec}: the module gives no config object`);
  return config;
}

export function resolveTrainConfig(spec: string, vocab: string | undefined, overrides: readonly string[]): TrainConfig {
  const source = loadConfigSource(spec);
  const values = { ...source, ...parseOverrides(overrides) };
  if (vocab) values['vocab_filepath'] = vocab;
  try {
    return trainConfig(values);
  } catch (e) {
    // A bad value from a config file is named with the file it came from.
    const fromFile = fs.existsSync(spec) && !builtinConfig(spec) && !PRESET_NAMES.includes(spec);
    throw fromFile ? new Error(`--config ${spec}: ${(e as Error).message}`) : e;
  }
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
