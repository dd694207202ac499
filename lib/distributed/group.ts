// Process groups and collectives on libtorch's c10d (TCPStore rendezvous, Gloo), with the launch
// conventions PyTorch users know: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT. Collectives work in place on contiguous tensors; `{ async: true }` returns a Work to
// wait on (synchronously, or with `await work.promise()` off the JavaScript thread).
import { tensor } from '../tensor/creation';
import { N } from '../tensor/native';
import { handleOf, Tensor } from '../tensor/tensor';

export type ReduceOp = 'sum' | 'avg' | 'product' | 'min' | 'max';

export interface InitOptions {
  rank?: number;
  worldSize?: number;
  masterAddr?: string;
  masterPort?: number;
  /** Seconds a rendezvous or collective may wait for the others (default 600, or SPARSE_MIXER_DIST_TIMEOUT). */
  timeoutSeconds?: number;
  /** 'gloo' (CPU tensors). NCCL is not in this build yet; 'auto' picks what the build has. */
  backend?: 'gloo' | 'auto';
  /**
   * Check before every collective that all ranks call the same one with matching tensors (one extra
   * small all-gather each; default: SPARSE_MIXER_DIST_DEBUG=1). Unchecked, mismatched calls can
   * abort the process inside Gloo, as in PyTorch without TORCH_DISTRIBUTED_DEBUG.
   */
  checkCollectives?: boolean;
}

/** Where this process stands in its launch, from the environment torchrun-style launchers set. */
export interface LaunchEnvironment {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  masterAddr: string;
  masterPort: number;
}

function envInt(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got '${raw}'`);
  return n;
}

/** Reads RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT (one process when unset). */
export function launchEnvironment(env: NodeJS.ProcessEnv = process.env): LaunchEnvironment {
  const worldSize = envInt(env, 'WORLD_SIZE', 1, 1);
  const rank = envInt(env, 'RANK', 0, 0);
  if (rank >= worldSize) throw new Error(`RANK ${rank} is outside WORLD_SIZE ${worldSize}`);
  const localWorldSize = envInt(env, 'LOCAL_WORLD_SIZE', worldSize, 1);
  const localRank = envInt(env, 'LOCAL_RANK', rank % localWorldSize, 0);
  return {
    rank,
    worldSize,
    localRank,
    localWorldSize,
    masterAddr: env['MASTER_ADDR'] || '127.0.0.1',
    masterPort: envInt(env, 'MASTER_PORT', 29500, 1),
  };
}

/** A collective (or one per tensor of a list) in flight. */
export class Work {
  private done = false;
  private readonly ids: readonly number[];

  constructor(
    ids: number | readonly number[],
    private readonly after?: () => void,
  ) {
    this.ids = typeof ids === 'number' ? [ids] : ids;
  }

  /** Blocks until the collective has finished; throws an Error naming the collective, the rank and the cause. */
  wait(): void {
    if (this.done) return;
    this.done = true;
    rethrowClean(() => {
      for (const id of this.ids) N.workWait(id);
    });
    this.after?.();
  }

  /** Waits off the JavaScript thread (the event loop keeps running). */
  async promise(): Promise<void> {
    if (this.done) return;
    this.done = true;
    try {
      await Promise.all(this.ids.map((id) => N.workWaitAsync(id)));
    } catch (error) {
      throw cleanError(error);
    }
    this.after?.();
  }

  isCompleted(): boolean {
    return this.done || this.ids.every((id) => N.workIsCompleted(id));
  }
}

// Native messages start with the binding's name ("workWait: allReduce failed on rank 1 ...").
function cleanError(error: unknown): Error {
  if (!(error instanceof Error)) return new Error(String(error));
  return new Error(error.message.replace(/^(workWait|workWaitAsync|dist\w+|gradSync\w+|experts\w+): /, ''));
}

function rethrowClean<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw cleanError(error);
  }
}

// c10d's tensor lists mean copies of one tensor on several devices; here a list means several
// tensors, each reduced (or broadcast) on its own: one collective per tensor, started together.
function eachTensor(tensors: Tensor | readonly Tensor[], start: (handle: number) => number): number[] {
  const list = tensors instanceof Tensor ? [tensors] : tensors;
  const handles = list.map((t, i) => handleOf(t, `tensors[${i}]`));
  return rethrowClean(() => handles.map((h) => start(h)));
}

let checkCollectives = false;

/** What a rank passes to a collective, to compare across ranks (checkCollectives). */
interface CallDescription {
  kind: string;
  tensors: string[];
  src?: number;
  op?: string;
  inputSplits?: readonly number[];
  outputSplits?: readonly number[];
}

const describeTensor = (t: Tensor) => `${t.dtype}[${t.shape.join(', ')}]`;
const DESCRIPTION_BYTES = 512;

/** A set of processes that run collectives together: the world, or a subgroup of it. */
export class ProcessGroup {
  constructor(
    /** The native group id (process-local). */
    readonly id: number,
    /** This process's rank within the group. */
    readonly rank: number,
    readonly size: number,
    /** The members' ranks in the world, in group order. */
    readonly ranks: readonly number[],
  ) {}

  /**
   * With checkCollectives: every member describes its call and all compare, so a mismatch is an
   * Error on every rank instead of a crash or a hang inside the backend.
   */
  private verify(call: CallDescription): void {
    if (!checkCollectives) return;
    const json = Buffer.from(JSON.stringify(call)).subarray(0, DESCRIPTION_BYTES);
    const padded = new Uint8Array(DESCRIPTION_BYTES);
    padded.set(json);
    const mine = tensor(padded, { dtype: 'uint8' });
    const all = (() => {
      try {
        return rethrowClean(() => N.distAllGather(this.id, handleOf(mine, 'description')));
      } finally {
        mine.dispose();
      }
    })();
    const outputs = all.outputs.map((h) => Tensor._wrap(h));
    let calls: CallDescription[];
    try {
      new Work(all.work).wait();
      calls = outputs.map((t) => JSON.parse(Buffer.from(t.dataSync() as Uint8Array).toString('utf8').replace(/\0+$/, '')) as CallDescription);
    } finally {
      for (const t of outputs) t.dispose();
    }
    const show = (c: CallDescription) => `${c.kind}(${c.tensors.join(', ')}${c.src !== undefined ? `, src ${c.src}` : ''}${c.op ? `, ${c.op}` : ''}${c.inputSplits ? `, inputSplits [${c.inputSplits}]` : ''}${c.outputSplits ? `, outputSplits [${c.outputSplits}]` : ''})`;
    const key = (c: CallDescription) => (c.kind === 'allToAll' ? `${c.kind}|${c.tensors.map((t) => t.replace(/\[\d+/, '[*')).join()}` : show(c));
    let consistent = calls.every((c) => key(c) === key(calls[0]!));
    if (consistent && call.kind === 'allToAll') {
      // What member p sends to member q is what q expects from p.
      const rows = (c: CallDescription) => Number(/\[(\d+)/.exec(c.tensors[0]!)?.[1] ?? 0);
      const sent = (c: CallDescription, q: number) => c.inputSplits?.[q] ?? rows(c) / this.size;
      const expected = (c: CallDescription, p: number) => c.outputSplits?.[p] ?? rows(c) / this.size;
      consistent = calls.every((cq, q) => calls.every((cp, p) => sent(cp, q) === expected(cq, p)));
    }
    if (!consistent) {
      throw new Error(`${call.kind}: the ranks of the group called different collectives (nothing was sent): ${calls.map((c, r) => `rank ${this.ranks[r]}: ${show(c)}`).join('; ')}`);
    }
  }

  /** Reduces tensors in place over the group ('avg' sums, then divides). */
  allReduce(tensors: Tensor | readonly Tensor[], options?: { op?: ReduceOp; async?: false }): void;
  allReduce(tensors: Tensor | readonly Tensor[], options: { op?: ReduceOp; async: true }): Work;
  allReduce(tensors: Tensor | readonly Tensor[], options: { op?: ReduceOp; async?: boolean } = {}): Work | void {
    const op = options.op ?? 'sum';
    const list = tensors instanceof Tensor ? [tensors] : [...tensors];
    this.verify({ kind: 'allReduce', tensors: list.map(describeTensor), op });
    const ids = eachTensor(list, (h) => N.distAllReduce(this.id, [h], op === 'avg' ? 'sum' : op));
    const after = op === 'avg' ? () => list.forEach((t) => t.mulInPlace(1 / this.size)) : undefined;
    return this.finish(new Work(ids, after), options.async);
  }

  /** Copies the tensors of group rank `src` into every member's tensors. */
  broadcast(tensors: Tensor | readonly Tensor[], options?: { src?: number; async?: false }): void;
  broadcast(tensors: Tensor | readonly Tensor[], options: { src?: number; async: true }): Work;
  broadcast(tensors: Tensor | readonly Tensor[], options: { src?: number; async?: boolean } = {}): Work | void {
    const src = options.src ?? 0;
    this.verify({ kind: 'broadcast', tensors: (tensors instanceof Tensor ? [tensors] : tensors).map(describeTensor), src });
    return this.finish(new Work(eachTensor(tensors, (h) => N.distBroadcast(this.id, [h], src))), options.async);
  }

  /** Every member's tensor (same shape and dtype everywhere), in group rank order. */
  allGather(tensor: Tensor): Tensor[];
  allGather(tensor: Tensor, options: { async: true }): { work: Work; outputs: Tensor[] };
  allGather(tensor: Tensor, options: { async?: boolean } = {}): Tensor[] | { work: Work; outputs: Tensor[] } {
    this.verify({ kind: 'allGather', tensors: [describeTensor(tensor)] });
    const r = rethrowClean(() => N.distAllGather(this.id, handleOf(tensor, 'tensor')));
    const outputs = r.outputs.map((h) => Tensor._wrap(h));
    const work = new Work(r.work);
    if (options.async) return { work, outputs };
    this.settle(work, outputs);
    return outputs;
  }

  /**
   * Scatters rows of dim 0 to the members and gathers what they send: member p receives
   * `inputSplits[p]` rows from this rank; `outputSplits[p]` rows arrive from member p. Without
   * splits, dim 0 is split evenly.
   */
  allToAll(input: Tensor, options?: { outputSplits?: readonly number[]; inputSplits?: readonly number[]; async?: false }): Tensor;
  allToAll(input: Tensor, options: { outputSplits?: readonly number[]; inputSplits?: readonly number[]; async: true }): { work: Work; output: Tensor };
  allToAll(input: Tensor, options: { outputSplits?: readonly number[]; inputSplits?: readonly number[]; async?: boolean } = {}): Tensor | { work: Work; output: Tensor } {
    this.verify({ kind: 'allToAll', tensors: [describeTensor(input)], ...(options.inputSplits ? { inputSplits: options.inputSplits } : {}), ...(options.outputSplits ? { outputSplits: options.outputSplits } : {}) });
    const r = rethrowClean(() => N.distAllToAll(this.id, handleOf(input, 'input'), options.outputSplits, options.inputSplits));
    const output = Tensor._wrap(r.output);
    const work = new Work(r.work);
    if (options.async) return { work, output };
    this.settle(work, [output]);
    return output;
  }

  /** Returns when every member has reached it. */
  barrier(): void {
    this.verify({ kind: 'barrier', tensors: [] });
    new Work(rethrowClean(() => N.distBarrier(this.id))).wait();
  }

  private finish(work: Work, async: boolean | undefined): Work | void {
    if (async) return work;
    work.wait();
  }

  // Outputs are freed when the wait fails, so a failed collective leaks nothing.
  private settle(work: Work, outputs: Tensor[]): void {
    try {
      work.wait();
    } catch (error) {
      for (const t of outputs) t.dispose();
      throw error;
    }
  }
}

let world: ProcessGroup | undefined;
let groupsMade = 0;

/** The world group, or undefined before init(). */
export function getWorld(): ProcessGroup | undefined {
  return world;
}

export function isInitialized(): boolean {
  return world !== undefined;
}

/** Backends this build has ('gloo'; NCCL is not yet built). */
export function availableBackends(): string[] {
  return N.distBackends();
}

function defaultTimeout(): number {
  const raw = process.env['SPARSE_MIXER_DIST_TIMEOUT'];
  if (raw === undefined || raw === '') return 600;
  const n = Number(raw);
  if (!(n > 0)) throw new Error(`SPARSE_MIXER_DIST_TIMEOUT must be a positive number of seconds, got '${raw}'`);
  return n;
}

/**
 * Joins the world: rank 0 hosts c10d's TCPStore at MASTER_ADDR:MASTER_PORT, every rank connects
 * to it, then the Gloo backend connects every pair. Options override the environment.
 */
export function init(options: InitOptions = {}): ProcessGroup {
  if (world) throw new Error('distributed.init: already initialized (call distributed.destroy() first)');
  const env = launchEnvironment();
  const backend = options.backend ?? 'auto';
  if (backend !== 'gloo' && backend !== 'auto') throw new Error(`distributed.init: unknown backend '${String(backend)}' (this build has: ${availableBackends().join(', ') || 'none'})`);
  if (!availableBackends().includes('gloo')) throw new Error('distributed.init: this build has no Gloo backend (install libgloo-dev and rebuild)');
  const timeoutSeconds = options.timeoutSeconds ?? defaultTimeout();
  if (!(timeoutSeconds > 0)) throw new RangeError(`distributed.init: timeoutSeconds must be positive, got ${timeoutSeconds}`);
  const r = rethrowClean(() =>
    N.distInit({
      rank: options.rank ?? env.rank,
      worldSize: options.worldSize ?? env.worldSize,
      masterAddr: options.masterAddr ?? env.masterAddr,
      masterPort: options.masterPort ?? env.masterPort,
      timeoutMs: Math.round(timeoutSeconds * 1000),
    }),
  );
  groupsMade = 0;
  checkCollectives = options.checkCollectives ?? process.env['SPARSE_MIXER_DIST_DEBUG'] === '1';
  world = new ProcessGroup(r.group, r.rank, r.size, Array.from({ length: r.size }, (_, i) => i));
  return world;
}

/**
 * A subgroup of the world. Every rank of the world must call this with the same ranks, in the same
 * order relative to other newGroup calls (as torch.distributed.new_group); non-members get undefined.
 */
export function newGroup(ranks: readonly number[]): ProcessGroup | undefined {
  if (!world) throw new Error('distributed.newGroup: call distributed.init() first');
  const name = `g${++groupsMade}`;
  const id = rethrowClean(() => N.distNewGroup(ranks, name));
  if (id < 0) return undefined;
  return new ProcessGroup(id, ranks.indexOf(world.rank), ranks.length, [...ranks]);
}

/** Leaves the world: closes every group and the store connection. Safe to call when not initialized. */
export function destroy(): void {
  N.distDestroy();
  world = undefined;
}
