// A folder of numbered checkpoints, each written completely or not at all:
//   <dir>/<prefix>-<step, 9 digits>/model.safetensors, optimizer.safetensors, state.json
// A checkpoint is assembled in "<name>.partial-<pid>" and renamed into place once every file is
// written and fsynced, so a crash leaves either the whole checkpoint or none of it. Checksums in
// state.json (integrity.ts) let loading tell a damaged or edited file from a good one.
import * as fs from 'fs';
import * as path from 'path';
import { dispose, type Device, type Tensor } from '../../tensor';
import { excerpt, showValue } from '../../util/excerpt';
import { makeDirs } from '../../util/files';
import { CheckpointError, checkStateIntegrity, INTEGRITY_KEY, integrityFor, verifyTensorFile, type Integrity } from './integrity';
import { DATA_CHECKSUM_KEY, fsyncDir, loadSafetensors, SafetensorsFormatError, saveSafetensors, writeAll, writeFileAtomic, type Safetensors } from './safetensors';

export const CHECKPOINT_FILES = ['model.safetensors', 'optimizer.safetensors', 'state.json'] as const;
const TENSOR_FILES = ['model.safetensors', 'optimizer.safetensors'] as const;

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

export interface LoadLatestOptions {
  device?: Device;
  /** Further checks of a loaded checkpoint (e.g. the training state's schema); a CheckpointError skips it too. */
  validate?: (ckpt: LoadedCheckpoint, dir: string) => void;
  /** Told about each newer checkpoint that was skipped as damaged, and about unverifiable older ones. */
  onNote?: (note: string) => void;
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
    // An array would save and then fail to load (state.json holds an object): refused here instead.
    if (typeof parts.state !== 'object' || parts.state === null || Array.isArray(parts.state) || json === undefined) {
      throw new TypeError('CheckpointStore.save: state must be a JSON-serialisable object');
    }
    if (INTEGRITY_KEY in parts.state) throw new TypeError(`CheckpointStore.save: the state field '${INTEGRITY_KEY}' is reserved for the checksums`);
    makeDirs(this.dir);
    const final = this.pathFor(step);
    const partial = `${final}.partial-${process.pid}`;
    fs.rmSync(partial, { recursive: true, force: true }); // our own, from an earlier failed save
    fs.mkdirSync(partial);
    try {
      const meta = { format: 'pt', step: String(step) };
      const checksum = { checksum: true };
      const model = saveSafetensors(path.join(partial, 'model.safetensors'), parts.params, meta, checksum);
      const optimizer = saveSafetensors(path.join(partial, 'optimizer.safetensors'), parts.optimizer ?? new Map(), {
        ...meta,
        ...(parts.optimizer ? {} : { optimizer: NO_OPTIMIZER }),
      }, checksum);
      // The state as JSON sees it (undefined fields dropped), so the digests match what loading reads.
      const state = JSON.parse(json) as Record<string, unknown>;
      const integrity = integrityFor({ 'model.safetensors': model, 'optimizer.safetensors': optimizer }, state);
      const stateBytes = Buffer.from(`${JSON.stringify({ ...state, [INTEGRITY_KEY]: integrity }, null, 2)}\n`);
      writeFileAtomic(path.join(partial, 'state.json'), (fd) => writeAll(fd, stateBytes));
      fsyncDir(partial);
      this.moveIntoPlace(partial, final);
    } catch (e) {
      fs.rmSync(partial, { recursive: true, force: true });
      throw e;
    }
    this.prune();
    return final;
  }

  /**
   * Loads a checkpoint (default: the latest). A damaged or edited file is a CheckpointError naming
   * the file (and the field where it can tell), never skipped. Checkpoints written before the
   * checksums load unverified; onNote says so.
   */
  load(step?: number, options: { device?: Device; onNote?: (note: string) => void } = {}): LoadedCheckpoint {
    const s = step ?? this.latest()?.step;
    if (s === undefined) throw new Error(`no checkpoint in ${this.dir}`);
    const dir = this.pathFor(s);
    const missing = this.missingFile(s);
    if (missing !== undefined) throw new CheckpointError(`checkpoint ${dir} is missing or incomplete: no ${missing}`, path.join(dir, missing));
    const stateFile = path.join(dir, 'state.json');
    let state: unknown;
    try {
      state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
    } catch (e) {
      throw new CheckpointError(`checkpoint state ${stateFile} is unreadable: ${excerpt((e as Error).message, 160)}`, stateFile);
    }
    if (typeof state !== 'object' || state === null || Array.isArray(state)) throw CheckpointError.at(stateFile, 'is not a JSON object');
    const fields = state as Record<string, unknown>;
    const integrity = checkStateIntegrity(stateFile, fields, TENSOR_FILES);
    delete fields[INTEGRITY_KEY];
    if (fields['step'] !== undefined && fields['step'] !== s) {
      throw CheckpointError.at(stateFile, `is ${showValue(fields['step'])}, but the checkpoint folder ${path.basename(dir)} is step ${s}`, 'step');
    }
    const model = this.loadTensors(dir, 'model.safetensors', s, integrity, options);
    let opt: Safetensors;
    try {
      opt = this.loadTensors(dir, 'optimizer.safetensors', s, integrity, options);
      if (!integrity && (model.metadata[DATA_CHECKSUM_KEY] !== undefined || opt.metadata[DATA_CHECKSUM_KEY] !== undefined)) {
        dispose([...opt.tensors.values()]);
        throw CheckpointError.at(stateFile, 'is missing though the tensor files carry checksums: the field was removed', INTEGRITY_KEY);
      }
    } catch (e) {
      dispose([...model.tensors.values()]);
      throw e;
    }
    if (!integrity) options.onNote?.(`${dir} was written without checksums (an older version): loaded without verifying it`);
    const optimizer = opt.metadata['optimizer'] === NO_OPTIMIZER ? undefined : opt.tensors;
    if (optimizer === undefined) dispose([...opt.tensors.values()]);
    return { step: s, params: model.tensors, optimizer, state: fields };
  }

  /**
   * The newest checkpoint that loads intact (and passes options.validate): a damaged newer one is
   * skipped with a note naming the file and field, so a run resumes from the last good state. No
   * checkpoint at all gives undefined; only damaged ones give a CheckpointError listing each.
   */
  loadLatestValid(options: LoadLatestOptions = {}): LoadedCheckpoint | undefined {
    const failures: string[] = [];
    for (const step of this.list().reverse()) {
      try {
        const ckpt = this.load(step, { device: options.device, onNote: options.onNote });
        try {
          options.validate?.(ckpt, this.pathFor(step));
        } catch (e) {
          disposeCheckpoint(ckpt);
          throw e;
        }
        return ckpt;
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw e;
        failures.push(e.message);
        options.onNote?.(`skipping the damaged checkpoint at step ${step}: ${e.message}`);
      }
    }
    if (failures.length) throw new CheckpointError(`no intact checkpoint: ${failures.join('; ')}`, this.dir);
    return undefined;
  }

  private loadTensors(dir: string, name: string, step: number, integrity: Integrity | undefined, options: { device?: Device }): Safetensors {
    const file = path.join(dir, name);
    let loaded: Safetensors;
    try {
      loaded = loadSafetensors(file, options);
    } catch (e) {
      if (e instanceof SafetensorsFormatError) throw new CheckpointError(e.message, file);
      throw e;
    }
    try {
      if (integrity) verifyTensorFile(file, name, { bytes: fs.statSync(file).size, headerSha256: loaded.headerSha256, dataSha256: loaded.dataSha256 }, integrity);
      const recorded = loaded.metadata['step'];
      if (recorded !== undefined && recorded !== String(step)) {
        throw CheckpointError.at(file, `is ${showValue(recorded)}, but the checkpoint folder ${path.basename(dir)} is step ${step}`, '__metadata__.step');
      }
    } catch (e) {
      dispose([...loaded.tensors.values()]);
      throw e;
    }
    return loaded;
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
