// metrics.jsonl: one JSON object per line, appended. Each line goes out in a single synchronous
// write of an O_APPEND descriptor, so concurrent writers never interleave within a line.
import * as fs from 'node:fs';
import { DataError } from '../../data/errors';

export interface MetricsRecord {
  step: number;
  split: string;
  [metric: string]: number | string;
}

// JSON has no NaN/Infinity (JSON.stringify turns them into null, losing a diverged loss), so
// non-finite numbers are stored as these strings and turned back into numbers when read.
const NON_FINITE: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

function encodeValue(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

/** Appending, never through a symbolic link: summaries are written inside the workdir only. */
function openForAppend(file: string): number {
  const { O_WRONLY, O_APPEND, O_CREAT, O_NOFOLLOW } = fs.constants;
  try {
    return fs.openSync(file, O_WRONLY | O_APPEND | O_CREAT | (O_NOFOLLOW ?? 0), 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new Error(`${file} is a symbolic link: summaries are written inside the workdir only`);
    throw e;
  }
}

export class MetricsLog {
  private fd: number | undefined;

  constructor(readonly file: string) {
    this.fd = openForAppend(file);
  }

  /**
   * Drops the records of steps after `step` (a resumed run logs them again), rewriting the file
   * atomically; lines that do not parse are kept as they are.
   */
  dropAfter(step: number): void {
    if (this.fd === undefined) throw new Error(`metrics log ${this.file} is closed`);
    const text = fs.readFileSync(this.file, 'utf8');
    const lines = text.split('\n').filter((l) => l !== '');
    const kept = lines.filter((line) => {
      try {
        const r = JSON.parse(line) as { step?: unknown };
        return !(typeof r.step === 'number' && r.step > step);
      } catch {
        return true;
      }
    });
    if (kept.length === lines.length) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
    const partial = `${this.file}.partial-${process.pid}`;
    fs.writeFileSync(partial, kept.map((l) => `${l}\n`).join(''));
    fs.renameSync(partial, this.file);
    this.fd = openForAppend(this.file);
  }

  write(record: MetricsRecord): void {
    if (this.fd === undefined) throw new Error(`metrics log ${this.file} is closed`);
    if (!Number.isSafeInteger(record.step)) throw new TypeError(`step must be an integer, got ${String(record.step)}`);
    if (typeof record.split !== 'string' || record.split === '') throw new TypeError('split must be a non-empty string');
    for (const [k, v] of Object.entries(record)) {
      if (typeof v !== 'number' && typeof v !== 'string') {
        throw new TypeError(`metric '${k}' must be a number or string, got ${v === null ? 'null' : typeof v}`);
      }
    }
    const line = Buffer.from(JSON.stringify(record, encodeValue) + '\n', 'utf8');
    // One write call per line; loop only for the (non-regular-file) case of a short write.
    let off = 0;
    while (off < line.length) off += fs.writeSync(this.fd, line, off, line.length - off);
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    fs.closeSync(fd);
  }
}

/** Reads every record of a metrics.jsonl; blank lines are skipped, anything else malformed throws. */
export function readMetricsLog(file: string): MetricsRecord[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const records: MetricsRecord[] = [];
  lines.forEach((text, i) => {
    if (text.trim() === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new DataError(`malformed JSON: ${(e as Error).message}`, file, i + 1);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new DataError('expected a JSON object', file, i + 1);
    }
    const record: Record<string, number | string> = {};
    for (const [k, v] of Object.entries(parsed)) {
      if (typeof v === 'number') record[k] = v;
      else if (typeof v === 'string') record[k] = k !== 'split' && v in NON_FINITE ? NON_FINITE[v] : v;
      else throw new DataError(`field '${k}' must be a number or string`, file, i + 1);
    }
    if (typeof record.step !== 'number') throw new DataError("missing numeric 'step'", file, i + 1);
    if (typeof record.split !== 'string') throw new DataError("missing string 'split'", file, i + 1);
    records.push(record as MetricsRecord);
  });
  return records;
}
