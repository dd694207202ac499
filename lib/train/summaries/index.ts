// Training summaries: metrics.jsonl for scripts, TensorBoard event files for plots.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeDirs } from '../../util/files';
import { EventFileWriter } from './event-file';
import { MetricsLog } from './jsonl';

export { crc32c, maskCrc, maskedCrc32c } from './crc32c';
export { EventFileWriter, frameRecord } from './event-file';
export { MetricsLog, readMetricsLog, type MetricsRecord } from './jsonl';

/**
 * Writes `<workdir>/metrics.jsonl` and TensorBoard event files under `<workdir>/<split>/`
 * (one writer per split, opened on first use, so TensorBoard shows each split as a run).
 */
export class Summaries {
  private readonly jsonl: MetricsLog;
  private readonly writers = new Map<string, EventFileWriter>();

  constructor(readonly workdir: string) {
    makeDirs(workdir);
    this.jsonl = new MetricsLog(path.join(workdir, 'metrics.jsonl'));
  }

  /** Forgets the metrics of steps after `step` (-1: all), which a resumed run logs again. */
  dropAfter(step: number): void {
    this.jsonl.dropAfter(step);
  }

  log(split: 'train' | 'eval' | string, step: number, metrics: Record<string, number>): void {
    // The split names a subfolder, so it must not escape the workdir.
    if (!/^[A-Za-z0-9_.-]+$/.test(split) || split === '.' || split === '..') {
      throw new TypeError(`split must be a plain folder name, got '${split}'`);
    }
    // Validate everything first so a bad value writes neither the jsonl line nor the event.
    for (const [tag, v] of Object.entries(metrics)) {
      if (tag === 'step' || tag === 'split') throw new TypeError(`metric name '${tag}' is reserved`);
      if (typeof v !== 'number') throw new TypeError(`metric '${tag}' must be a number, got ${typeof v}`);
    }
    if (!Number.isSafeInteger(step)) throw new TypeError(`step must be an integer, got ${String(step)}`);
    this.jsonl.write({ step, split, ...metrics });
    let writer = this.writers.get(split);
    if (writer === undefined) {
      const dir = path.join(this.workdir, split);
      const stat = fs.lstatSync(dir, { throwIfNoEntry: false });
      if (stat && !stat.isDirectory()) throw new Error(`${dir} is ${stat.isSymbolicLink() ? 'a symbolic link' : 'not a folder'}: summaries are written inside the workdir only`);
      writer = new EventFileWriter(dir);
      this.writers.set(split, writer);
    }
    writer.addScalars(step, metrics);
  }

  close(): void {
    for (const w of this.writers.values()) w.close();
    this.writers.clear();
    this.jsonl.close();
  }
}
