// A training workdir's config.json: written when a run starts, compared on every later run, read by
// eval and predict. Paths in it are absolute, so the workdir works from any folder; a workdir whose
// run never reached a checkpoint holds nothing to protect, so a corrected command may reuse it.
import * as fs from 'fs';
import * as path from 'path';
import { MODEL_SCHEMA } from '../model';
import { showValue } from '../util/excerpt';
import { makeDirs } from '../util/files';
import { CheckpointStore } from './checkpoint';
import { TRAIN_SCHEMA, trainConfig, type TrainConfig } from './config';
import { getWorld } from '../distributed';

/** Built-in corpus names, which are not paths. */
const BUILTIN_CORPORA = ['sotu', 'moby-dick'];

/** The config with its file and folder fields absolute (relative ones are taken from the current folder). */
export function absolutePaths<T extends Partial<Record<keyof TrainConfig, unknown>>>(config: T): T {
  const out: Record<string, unknown> = { ...config };
  for (const key of ['vocab_filepath', 'data_dir', 'init_checkpoint_dir'] as const) {
    const v = out[key];
    if (typeof v === 'string' && v !== '') out[key] = path.resolve(v);
  }
  if (typeof out['corpus'] === 'string') {
    out['corpus'] = (out['corpus'] as string)
      .split(',')
      .map((s) => s.trim())
      .map((s) => (s === '' || BUILTIN_CORPORA.includes(s) ? s : path.resolve(s)))
      .join(',');
  }
  return out as T;
}

/** The raw JSON of a workdir's config.json, with errors that name the file. */
function readConfigJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${file}: cannot read the run's config (${code === 'EISDIR' ? 'it is a folder' : (e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: the run's config is not valid JSON (${showValue((e as Error).message, 120)})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${file}: the run's config is not a JSON object`);
  return json as Record<string, unknown>;
}

/** A workdir's config, checked against the schema; errors name config.json and the field. */
export function readWorkdirConfig(workdir: string): TrainConfig {
  const file = path.join(workdir, 'config.json');
  if (!fs.existsSync(file)) throw new Error(`${workdir} has no config.json: not a training workdir`);
  const json = readConfigJson(file);
  try {
    return trainConfig(absolutePaths(json));
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}

function configDefault(key: string): unknown {
  return (TRAIN_SCHEMA[key] ?? MODEL_SCHEMA[key])?.default;
}

/**
 * Creates the workdir, or checks that it holds a run of this very config. A different config is
 * refused unless `force`, or unless the earlier run never wrote a checkpoint (then there is nothing
 * to resume, and its config.json is replaced, with a note).
 */
export function prepareWorkdir(workdir: string, config: TrainConfig, force = false, log: (line: string) => void = (l) => console.warn(l)): void {
  makeDirs(workdir);
  if ((getWorld()?.rank ?? 0) !== 0) return; // on several processes, rank 0 keeps the workdir
  const file = path.join(workdir, 'config.json');
  const current: Record<string, unknown> = absolutePaths({ ...config });
  if (fs.existsSync(file)) {
    const previous = absolutePaths(readConfigJson(file));
    // A key the saved config lacks came with a newer version; at its default it changes nothing.
    const saved = (k: string) => (k in previous ? previous[k] : configDefault(k));
    const differing = Object.keys({ ...previous, ...current }).filter((k) => JSON.stringify(saved(k)) !== JSON.stringify(current[k]));
    const checkpoints = new CheckpointStore(path.join(workdir, 'checkpoints'), { keep: 1 }).list().length;
    if (differing.length && !force && checkpoints > 0) {
      throw new Error(
        `${workdir} holds a run with a different config (${differing.slice(0, 6).map((k) => `${k}: ${JSON.stringify(saved(k))} -> ${JSON.stringify(current[k])}`).join(', ')}). ` +
          'Use another workdir, or --force to continue it with the new config.',
      );
    }
    if (differing.length && checkpoints === 0) log(`${file}: replacing the config of a run that never wrote a checkpoint (${differing.slice(0, 6).join(', ')} changed)`);
  }
  const partial = `${file}.partial-${process.pid}`;
  fs.writeFileSync(partial, JSON.stringify(current, null, 2));
  fs.renameSync(partial, file);
}
