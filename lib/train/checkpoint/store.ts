// A folder of numbered checkpoints, each written completely or not at all:
//   <dir>/<prefix>-<step, 9 digits>/model.safetensors, optimizer.safetensors, state.json
// A checkpoint is assembled in "<name>.partial-<pid>" and renamed into place once every file is
// written and fsynced, so a crash leaves either the whole checkpoint or none of it.
import * as fs from 'fs';
import * as path from 'path';
import { dispose, type Device, type Tensor } from '../../tensor';
import { fsyncDir, loadSafetensors, saveSafetensors, writeAll, writeFileAtomic } from './safetensors';

export const CHECKPOINT_FILES = ['model.safetensors', 'optimizer.safetensors', 'state.json'] as const;

/** Marks an optimizer.safetensors written for a checkpoint saved without optimizer state. */
const NO_OPTIMIZER = 'none';

export interface CheckpointParts {
  params: Map<string, Tensor>;
  optimizer?: Map<string, Tensor>;
  /** Anything JSON can hold: the step counter, schedules, data position, RNG seeds... */
  state: object;
}

export interface LoadedCheckpoint {
  step: number;
  params: Map<string, Tensor>;
  optimizer?: Map<string, Tensor>;
  state: object;
}

/** Frees the tensors of a loaded checkpoint. */
export function disposeCheckpoint(ckpt: LoadedCheckpoint): void {
  dispose([...ckpt.params.values(), ...(ckpt.optimizer?.values() ?? [])]);
}

export interface CheckpointStoreOptions {
  /** How many checkpoints to keep (the highest steps); older ones are deleted after each save. */
  keep: number;
  /** Folder names are `<prefix>-<step>` (default 'ckpt'). */
  prefix?: string;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

export class CheckpointStore {
  readonly dir: string;
  readonly keep: number;
  readonly prefix: string;
  private readonly complete: RegExp;
  private readonly leftover: RegExp;

  constructor(dir: string, options: CheckpointStoreOptions) {
    if (typeof dir !== 'string' || dir === '') throw new TypeError('CheckpointStore: dir must be a non-empty path');
    if (!Number.isInteger(options.keep) || options.keep < 1) throw new RangeError(`CheckpointStore: keep must be a positive integer, got ${options.keep}`);
    const prefix = options.prefix ?? 'ckpt';
    if (prefix === '' || /[/\\]/.test(prefix)) throw new Error(`CheckpointStore: invalid prefix ${JSON.stringify(prefix)}`);
    this.dir = dir;
    this.keep = options.keep;
    this.prefix = prefix;
    this.complete = new RegExp(`^${escapeRegExp(prefix)}-(\\d{9,})$`);
    this.leftover = new RegExp(`^${escapeRegExp(prefix)}-\\d{9,}\\.(?:partial|old|deleting)-(\\d+)$`);
  }

  /** The folder of a step's checkpoint (whether or not it exists). */
  pathFor(step: number): string {
    return path.join(this.dir, `${this.prefix}-${String(step).padStart(9, '0')}`);
  }

  /** Steps of the complete checkpoints, ascending. Partial folders and folders missing a file are left out. */
  list(): number[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const steps: number[] = [];
    for (const name of names) {
      const m = this.complete.exec(name);
      if (!m) continue;
      const step = Number(m[1]);
      // One spelling per step, so that a stray "ckpt-0000000005" cannot shadow "ckpt-000000005".
      if (Number.isSafeInteger(step) && path.basename(this.pathFor(step)) === name && this.missingFile(step) === undefined) steps.push(step);
    }
    return steps.sort((a, b) => a - b);
  }

  /** The checkpoint with the highest step, or undefined when there is none. */
  latest(): { step: number; dir: string } | undefined {
    const steps = this.list();
    const step = steps[steps.length - 1];
    return step === undefined ? undefined : { step, dir: this.pathFor(step) };
  }

  /** Writes a checkpoint (replacing one of the same step), then prunes to `keep`. Returns its folder. */
  save(step: number, parts: CheckpointParts): string {
    if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`CheckpointStore.save: step must be a non-negative integer, got ${step}`);
    const json = JSON.stringify(parts.state, null, 2);
    if (typeof parts.state !== 'object' || parts.state === null || json === undefined) {
      throw new TypeError('CheckpointStore.save: state must be a JSON-serialisable object');
    }
    fs.mkdirSync(this.dir, { recursive: true });
    const final = this.pathFor(step);
    const partial = `${final}.partial-${process.pid}`;
    fs.rmSync(partial, { recursive: true, force: true }); // our own, from an earlier failed save
    fs.mkdirSync(partial);
    try {
      const meta = { format: 'pt', step: String(step) };
      saveSafetensors(path.join(partial, 'model.safetensors'), parts.params, meta);
      saveSafetensors(path.join(partial, 'optimizer.safetensors'), parts.optimizer ?? new Map(), {
        ...meta,
        ...(parts.optimizer ? {} : { optimizer: NO_OPTIMIZER }),
      });
      writeFileAtomic(path.join(partial, 'state.json'), (fd) => writeAll(fd, Buffer.from(`${json}\n`)));
      fsyncDir(partial);
      this.moveIntoPlace(partial, final);
    } catch (e) {
      fs.rmSync(partial, { recursive: true, force: true });
      throw e;
    }
    this.prune();
    return final;
  }

  /** Loads a checkpoint (default: the latest). Damaged files are errors naming the file, never skipped. */
  load(step?: number, options: { device?: Device } = {}): LoadedCheckpoint {
    const s = step ?? this.latest()?.step;
    if (s === undefined) throw new Error(`no checkpoint in ${this.dir}`);
    const dir = this.pathFor(s);
    const missing = this.missingFile(s);
    if (missing !== undefined) throw new Error(`checkpoint ${dir} is missing or incomplete: no ${missing}`);
    const stateFile = path.join(dir, 'state.json');
    let state: unknown;
    try {
      state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
    } catch (e) {
      throw new Error(`checkpoint state ${stateFile} is unreadable: ${(e as Error).message}`);
    }
    if (typeof state !== 'object' || state === null) throw new Error(`checkpoint state ${stateFile} is not a JSON object`);
    const params = loadSafetensors(path.join(dir, 'model.safetensors'), options).tensors;
    try {
      const opt = loadSafetensors(path.join(dir, 'optimizer.safetensors'), options);
      const optimizer = opt.metadata['optimizer'] === NO_OPTIMIZER ? undefined : opt.tensors;
      if (optimizer === undefined) dispose([...opt.tensors.values()]);
      return { step: s, params, optimizer, state };
    } catch (e) {
      dispose([...params.values()]);
      throw e;
    }
  }

  private missingFile(step: number): string | undefined {
    const dir = this.pathFor(step);
    for (const file of CHECKPOINT_FILES) {
      try {
        if (!fs.statSync(path.join(dir, file)).isFile()) return file;
      } catch {
        return file;
      }
    }
    return undefined;
  }

  /** Renames partial to final; an existing final is moved aside first (a folder cannot be renamed over). */
  private moveIntoPlace(partial: string, final: string): void {
    let old: string | undefined;
    if (fs.existsSync(final)) {
      old = `${final}.old-${process.pid}`;
      fs.rmSync(old, { recursive: true, force: true });
      fs.renameSync(final, old);
    }
    fs.renameSync(partial, final);
    fsyncDir(this.dir);
    if (old !== undefined) fs.rmSync(old, { recursive: true, force: true });
  }

  /** Deletes all but the newest `keep` checkpoints, and leftovers of processes that died mid-save. */
  private prune(): void {
    for (const step of this.list().slice(0, -this.keep)) {
      // Renamed first, so the checkpoint disappears at once rather than file by file.
      const doomed = `${this.pathFor(step)}.deleting-${process.pid}`;
      fs.renameSync(this.pathFor(step), doomed);
      fs.rmSync(doomed, { recursive: true, force: true });
    }
    for (const name of fs.readdirSync(this.dir)) {
      const m = this.leftover.exec(name);
      if (m && (Number(m[1]) === process.pid || !isAlive(Number(m[1])))) {
        fs.rmSync(path.join(this.dir, name), { recursive: true, force: true });
      }
    }
  }
}
