// The units of work of `bench quality`: one pre-training or fine-tuning run each, in its own folder,
// turned into a record for quality.json. Records are read back from the run's metrics.jsonl, so a
// run finished (or resumed from its checkpoint) by an earlier process gives the same record.
import * as fs from 'fs';
import * as path from 'path';
import * as sm from '../lib';

const { pretrain, finetune, NonFiniteLossError, summaries } = sm.train;

export interface PretrainRecord {
  kind: 'pretrain';
  model: string;
  seed: number;
  learning_rate: number;
  steps: number;
  /** Seconds counted against the budget (steps and data waits; the crossing step included). */
  train_seconds: number;
  steps_per_sec: number;
  /** A non-finite loss stopped the run: its learning rate is never chosen. */
  diverged: boolean;
  /** Evaluation on the corpus's held-out split at the last step (null when diverged). */
  heldout: { mlm_loss: number | null; mlm_accuracy: number | null; nsp_accuracy: number | null };
  /** [training seconds, masked-LM training loss averaged over the steps since the previous point]. */
  curve: [number, number][];
  /** The whole run: model set-up, training, final evaluation and checkpoint. */
  wall_seconds: number;
  finished_at: string;
}

export interface FinetuneRecord {
  kind: 'finetune';
  /** 'sweep': evaluated on rows held out of train, to choose the learning rate; 'final': on the reported split. */
  purpose: 'sweep' | 'final';
  model: string;
  task: string;
  seed: number;
  learning_rate: number;
  /** The pre-training unit whose encoder it started from. */
  pretrained: string;
  steps: number;
  diverged: boolean;
  /** The task's metrics and loss at the last step (empty when diverged). */
  metrics: Record<string, number>;
  wall_seconds: number;
  finished_at: string;
}

export type UnitRecord = PretrainRecord | FinetuneRecord;

/** A run stopped by SIGINT/SIGTERM: its checkpoint is kept and the next bench run continues it. */
export class QualityInterrupted extends Error {}

const seconds = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e9;
const finite = (v: number | string | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The run's summary records of one split, the last one kept where a resumed run logged a step twice. */
function records(dir: string, split: string): sm.train.summaries.MetricsRecord[] {
  const file = path.join(dir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return [];
  const byStep = new Map<number, sm.train.summaries.MetricsRecord>();
  for (const r of summaries.readMetricsLog(file)) if (r.split === split) byStep.set(r.step, r);
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/**
 * A folder left by an unfinished unit: continued when it holds a checkpoint (the run was stopped by
 * a signal), else emptied (the process was killed mid-run; nothing there can be continued).
 */
export function prepareUnitDir(dir: string, log: (line: string) => void): void {
  const checkpoints = path.join(dir, 'checkpoints');
  if (fs.existsSync(checkpoints) && fs.readdirSync(checkpoints).some((d) => d.startsWith('ckpt-'))) {
    log(`continuing the stopped run in ${dir} from its checkpoint`);
  } else {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function guarded<T>(run: () => Promise<T>): Promise<T | 'diverged'> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof NonFiniteLossError) return 'diverged';
    throw e;
  }
}

export async function runPretrainUnit(id: string, config: sm.train.TrainConfig, dir: string, log: (line: string) => void): Promise<PretrainRecord> {
  prepareUnitDir(dir, log);
  const t0 = process.hrtime.bigint();
  const run = await guarded(() => pretrain(config, { workdir: dir, log }));
  if (run !== 'diverged' && run.stopped === 'signal') throw new QualityInterrupted(`bench quality: stopped during ${id}; run the same command again to continue it from its checkpoint in ${dir}`);
  const train = records(dir, 'train');
  const last = records(dir, 'eval').at(-1);
  const steps = run === 'diverged' ? (train.at(-1)?.step ?? 0) : run.step;
  const trainSeconds = run === 'diverged' ? finite(train.at(-1)?.['train_seconds']) ?? 0 : run.trainSeconds;
  return {
    kind: 'pretrain',
    model: config.preset,
    seed: config.seed,
    learning_rate: config.learning_rate,
    steps,
    train_seconds: trainSeconds,
    steps_per_sec: trainSeconds > 0 ? steps / trainSeconds : 0,
    diverged: run === 'diverged',
    heldout: {
      mlm_loss: run === 'diverged' ? null : finite(last?.['masked_lm_loss']),
      mlm_accuracy: run === 'diverged' ? null : finite(last?.['masked_lm_accuracy']),
      nsp_accuracy: run === 'diverged' ? null : finite(last?.['next_sentence_accuracy']),
    },
    curve: train.flatMap((r) => {
      const t = finite(r['train_seconds']);
      const loss = finite(r['masked_lm_loss']);
      return t === null || loss === null ? [] : [[t, loss] as [number, number]];
    }),
    wall_seconds: seconds(t0),
    finished_at: new Date().toISOString(),
  };
}

export async function runFinetuneUnit(
  id: string,
  purpose: FinetuneRecord['purpose'],
  pretrained: string,
  config: sm.train.TrainConfig,
  dir: string,
  log: (line: string) => void,
): Promise<FinetuneRecord> {
  prepareUnitDir(dir, log);
  const t0 = process.hrtime.bigint();
  const run = await guarded(() => finetune(config, { workdir: dir, log }));
  if (run !== 'diverged' && run.stopped === 'signal') throw new QualityInterrupted(`bench quality: stopped during ${id}; run the same command again to continue it from its checkpoint in ${dir}`);
  const last = records(dir, 'eval').at(-1);
  const metrics: Record<string, number> = {};
  if (run !== 'diverged' && last) {
    for (const [k, v] of Object.entries(last)) if (k !== 'step' && k !== 'split' && typeof v === 'number') metrics[k] = v;
  }
  return {
    kind: 'finetune',
    purpose,
    model: config.preset,
    task: config.dataset_name,
    seed: config.seed,
    learning_rate: config.learning_rate,
    pretrained,
    steps: run === 'diverged' ? (records(dir, 'train').at(-1)?.step ?? 0) : run.step,
    diverged: run === 'diverged',
    metrics,
    wall_seconds: seconds(t0),
    finished_at: new Date().toISOString(),
  };
}
