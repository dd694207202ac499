// The schema of a training checkpoint's state.json (TrainingState in loop.ts), checked on resume so
// that a contradictory or hand-edited state is refused naming the file and the field, instead of
// being resumed from as if true or failing later with an internal TypeError.
import * as path from 'path';
import { CheckpointError, type LoadedCheckpoint } from './checkpoint';
import { showValue } from '../util/excerpt';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isRngState = (v: unknown) => Array.isArray(v) && v.length === 4 && v.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32);
const isIdList = (v: unknown) => Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0);

/** A check of the `data` field of a run's state (pre-training stream or fine-tuning position). */
export type DataStateCheck = (data: Record<string, unknown>, problem: (field: string, what: string) => never) => void;

/** Checks a loaded training checkpoint's state; throws a CheckpointError naming state.json and the field. */
export function checkTrainingState(ckpt: LoadedCheckpoint, dir: string, checkData?: DataStateCheck): void {
  const file = path.join(dir, 'state.json');
  const problem = (field: string, what: string): never => {
    throw CheckpointError.at(file, what, field);
  };
  const s = ckpt.state as Record<string, unknown>;
  if (!isCount(s['step'])) problem('step', `is ${showValue(s['step'])}, not a step count`);
  if (s['step'] !== ckpt.step) problem('step', `is ${s['step'] as number}, but the checkpoint folder is step ${ckpt.step}`);
  if (!isCount(s['optimizerSteps']) || (s['optimizerSteps'] as number) > ckpt.step) problem('optimizerSteps', `is ${showValue(s['optimizerSteps'])}, not a count of at most ${ckpt.step} updates`);
  for (const key of ['torchRng', 'deviceRng']) {
    const v = s[key];
    if (v === undefined && key === 'deviceRng') continue;
    if (typeof v !== 'string' || v === '' || !BASE64.test(v)) problem(key, `is ${showValue(v, 40)}, not a generator state in base64`);
  }
  // Runs on several processes: the world, and one entry of generators per rank.
  const world = s['world'] as Record<string, unknown> | undefined;
  if (world !== undefined) {
    if (typeof world !== 'object' || world === null || !isCount(world['size']) || (world['size'] as number) < 1 || !isCount(world['expertParallelSize']) || (world['expertParallelSize'] as number) < 1) {
      problem('world', `is ${showValue(world, 60)}, not { size, expertParallelSize, batchSizeScope }`);
    }
    const ranks = s['ranks'];
    if (!Array.isArray(ranks) || ranks.length !== world['size']) problem('ranks', `is ${showValue(ranks, 40)}, not one entry per rank of ${world['size'] as number}`);
    (ranks as Record<string, unknown>[]).forEach((r, i) => {
      if (typeof r?.['torchRng'] !== 'string' || !BASE64.test(r['torchRng']) || (r['deviceRng'] !== undefined && (typeof r['deviceRng'] !== 'string' || !BASE64.test(r['deviceRng'])))) {
        problem(`ranks[${i}]`, 'is not { torchRng, deviceRng? } in base64');
      }
    });
  }
  const data = s['data'];
  if (typeof data !== 'object' || data === null || Array.isArray(data)) problem('data', `is ${showValue(data, 40)}, not an object`);
  checkData?.(data as Record<string, unknown>, (field, what) => problem(`data.${field}`, what));
}

/** Pre-training: the document stream's state (the corpus state is checked again when the stream restores it). */
export const checkPretrainingData: DataStateCheck = (d, problem) => {
  if (typeof d['corpus'] !== 'object' || d['corpus'] === null) problem('corpus', 'is not an object');
  if (!isRngState(d['rng'])) problem('rng', `is ${showValue(d['rng'], 40)}, not four 32-bit unsigned integers`);
  const pending = d['pending'];
  if (!Array.isArray(pending)) problem('pending', `is ${showValue(pending, 40)}, not a list`);
  (pending as unknown[]).forEach((p, i) => {
    const pair = p as Record<string, unknown> | null;
    if (typeof pair !== 'object' || pair === null || !isIdList(pair['a']) || !isIdList(pair['b']) || (pair['label'] !== 0 && pair['label'] !== 1)) {
      problem(`pending[${i}]`, 'is not a segment pair { a, b, label }');
    }
  });
  if (d['trainSeconds'] !== undefined && !(typeof d['trainSeconds'] === 'number' && Number.isFinite(d['trainSeconds']) && d['trainSeconds'] >= 0)) {
    problem('trainSeconds', `is ${showValue(d['trainSeconds'])}, not a number of seconds`);
  }
};

/** Fine-tuning: where the shuffled pass over the examples stands. */
export const checkFinetuningData: DataStateCheck = (d, problem) => {
  if (!isCount(d['epoch'])) problem('epoch', `is ${showValue(d['epoch'])}, not an epoch count`);
  if (!isCount(d['position'])) problem('position', `is ${showValue(d['position'])}, not a position`);
  if (!isRngState(d['epochRng'])) problem('epochRng', `is ${showValue(d['epochRng'], 40)}, not four 32-bit unsigned integers`);
};
