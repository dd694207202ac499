// Data- and expert-parallel training on a process group: the few well-named points a trainer
// calls (wrap the model, synchronise gradients, the global gradient norm, reduce statistics,
// agree on stopping, gather what a checkpoint holds, share a checkpoint at resumption).
//
// Topology for world size W and expert-parallel size P (P divides W): ranks [kP, kP+P) form an
// expert-parallel group that shares one copy of the experts, rank kP+q holding block q;
// ranks {q, q+P, q+2P, ...} hold the same block (an expert replica group). Dense parameters are
// averaged over the world, expert blocks over their replica group. Expert gradients reach a block
// from every rank of its expert group through the all-to-all, so they are divided by W as well.
import { Embedding, type Module, type StateDict } from '../nn';
import { noGrad, optim, tensor, tidy, zeros, type Tensor } from '../tensor';
import { shardExperts, gatherShards } from './experts';
import { DEFAULT_BUCKET_BYTES, DEFAULT_FIRST_BUCKET_BYTES, GradientSync, RowGradients, type GradientSyncOptions, type GradSyncStats } from './grad-sync';
import { newGroup, type ProcessGroup } from './group';

export interface ParallelOptions extends Omit<GradientSyncOptions, 'divisor' | 'rowTables'> {
  /** Ranks over which each MoE layer's experts are spread (divides the world size and num_experts). */
  expertParallelSize?: number;
}

/** What a step's communication cost: summed over the dense and expert gradient syncs. */
export interface CommStats extends GradSyncStats {}

/** The model's word embeddings (Embedding modules registered as 'word'). */
function wordEmbeddings(module: Module): Embedding[] {
  return module.namedChildren().flatMap(([name, child]) => (child instanceof Embedding && name === 'word' ? [child] : wordEmbeddings(child)));
}

/** A logical tensor's whole shape, from a block and where it sits. */
function wholeShape(shape: readonly number[], dim: number, count: number): number[] {
  return shape.map((d, i) => (i === dim ? d * count : d));
}

export class ParallelTraining {
  readonly rank: number;
  readonly worldSize: number;
  readonly expertParallelSize: number;
  /** The ranks sharing one copy of the experts (undefined without expert parallelism). */
  readonly expertGroup: ProcessGroup | undefined;
  /** The ranks holding the same expert block (undefined without expert parallelism). */
  readonly replicaGroup: ProcessGroup | undefined;
  /** Sharded parameter names and the dim they are split along, with the number of blocks. */
  readonly shards: Map<string, { dim: number; count: number }>;
  private readonly syncs: GradientSync[] = [];
  /** Word embeddings whose looked-up rows are reduced as rows (see RowGradients). */
  private readonly rowTables: { table: Embedding; rows: RowGradients }[] = [];
  private readonly denseParams: Tensor[] = [];
  private readonly expertParams: Tensor[] = [];

  constructor(
    readonly world: ProcessGroup,
    readonly model: Module,
    options: ParallelOptions = {},
  ) {
    this.rank = world.rank;
    this.worldSize = world.size;
    const P = options.expertParallelSize ?? 1;
    this.expertParallelSize = P;
    if (!Number.isInteger(P) || P < 1 || this.worldSize % P !== 0) {
      throw new Error(`expert_parallel_size ${P} must be a positive integer dividing the world size ${this.worldSize}`);
    }
    if (P > 1) {
      // Every rank creates every group, in the same order (c10d's rule for subgroups).
      let expertGroup: ProcessGroup | undefined;
      let replicaGroup: ProcessGroup | undefined;
      for (let k = 0; k < this.worldSize / P; k++) expertGroup ??= newGroup(Array.from({ length: P }, (_, q) => k * P + q));
      for (let q = 0; q < P; q++) replicaGroup ??= newGroup(Array.from({ length: this.worldSize / P }, (_, k) => k * P + q));
      this.expertGroup = expertGroup!;
      this.replicaGroup = replicaGroup!;
      shardExperts(model, this.expertGroup);
    }
    this.shards = new Map(model.namedShards().map(([name, s]) => [name, { dim: s.dim, count: s.count }]));
    for (const [name, p] of model.namedParameters()) (this.shards.has(name) ? this.expertParams : this.denseParams).push(p);
    // Start from rank 0's parameters (and, for expert blocks, the replica group's first rank's).
    noGrad(() => {
      if (this.denseParams.length) world.broadcast(this.denseParams);
      if (this.replicaGroup && this.expertParams.length && this.replicaGroup.size > 1) this.replicaGroup.broadcast(this.expertParams);
    });
    // DDP's 25 MiB buckets, but never more than a quarter of the gradients: a model of 25 MiB in one
    // bucket would start communicating only when backward has ended.
    const gradientBytes = this.denseParams.reduce((n, p) => n + p.numel * 4, 0);
    const bucketBytes = options.bucketBytes ?? Math.min(DEFAULT_BUCKET_BYTES, Math.max(DEFAULT_FIRST_BUCKET_BYTES, Math.round(gradientBytes / 4)));
    const syncOptions = { bucketBytes, firstBucketBytes: options.firstBucketBytes, divisor: this.worldSize };
    // The word embeddings: their dense gradient would come last in backward (their lookup is the
    // first op of forward) and is the largest; their rows are exchanged instead, a few hundred KB.
    for (const table of wordEmbeddings(model)) this.rowTables.push({ table, rows: new RowGradients() });
    const rowTables = this.rowTables.map(({ table, rows }) => ({ param: this.denseParams.indexOf(table.weight), rows })).filter((t) => t.param >= 0);
    for (const { table, rows } of this.rowTables) table.lookupWith(rows);
    if (this.denseParams.length) this.syncs.push(new GradientSync(world, this.denseParams, { ...syncOptions, rowTables }));
    if (this.expertParams.length) this.syncs.push(new GradientSync(this.replicaGroup!, this.expertParams, syncOptions));
  }

  /** Before each backward: sync on the last micro-step only. */
  prepareBackward(sync: boolean): void {
    for (const s of this.syncs) s.prepare(sync);
  }

  /** After the last backward of a step: every gradient is the average over the world's batch. */
  finishBackward(): CommStats {
    const total: CommStats = { buckets: 0, bytes: 0, commMs: 0, exposedMs: 0, firstLaunchMs: 0 };
    for (const [i, s] of this.syncs.entries()) {
      const r = s.finish();
      total.buckets += r.buckets;
      total.bytes += r.bytes;
      total.commMs += r.commMs;
      total.exposedMs += r.exposedMs;
      if (i === 0) total.firstLaunchMs = r.firstLaunchMs;
    }
    return total;
  }

  /** The gradient norm over the whole model: expert blocks' squares summed over their expert group. */
  gradNorm(): number {
    const dense = optim.gradNorm(this.denseParams);
    if (!this.expertGroup) return dense;
    const expert = optim.gradNorm(this.expertParams);
    const squares = tidy(() => {
      const t = tensor([expert * expert], { dtype: 'float64' });
      this.expertGroup!.allReduce(t);
      return t.item();
    });
    return Math.sqrt(dense * dense + squares);
  }

  /** Clips every gradient against the global norm; returns the norm before clipping. */
  clipGradNorm(maxNorm: number): number {
    const norm = this.gradNorm();
    optim.clipGradNorm([...this.denseParams, ...this.expertParams], maxNorm, norm);
    return norm;
  }

  /** Sums equal-length rows of numbers over the world (one collective for all of them). */
  sumOverRanks(rows: readonly (readonly number[])[]): number[][] {
    if (rows.length === 0) return [];
    const width = rows[0]!.length;
    return tidy(() => {
      const t = tensor(Float64Array.from(rows.flat()), { shape: [rows.length, width], dtype: 'float64' });
      this.world.allReduce(t);
      const flat = Array.from(t.dataSync() as Float64Array);
      return rows.map((_, i) => flat.slice(i * width, (i + 1) * width));
    });
  }

  /** True on every rank when it is true on any (e.g. a signal seen by one rank stops them all at the same step). */
  anyRank(flag: boolean): boolean {
    return tidy(() => {
      const t = tensor([flag ? 1 : 0], { dtype: 'int64' });
      this.world.allReduce(t, { op: 'max' });
      return t.item() > 0;
    });
  }

  /**
   * Whole tensors of a state dictionary whose expert entries are blocks (parameters, or optimizer
   * moments named `<prefix><param>`). Only rank 0 gets a usable result; the other members of its
   * expert group take part in the gathers. Call `release` on the result when done.
   */
  gatherWhole(state: StateDict, prefixes: readonly string[] = ['']): { whole: StateDict; release: () => void } {
    if (!this.expertGroup || this.rank >= this.expertParallelSize) return { whole: state, release: () => {} };
    const dims = new Map([...this.shards].map(([name, s]) => [name, s.dim]));
    const strip = (name: string) => {
      const p = prefixes.find((pre) => name.startsWith(pre));
      return p === undefined ? name : name.slice(p.length);
    };
    const { whole, made } = gatherShards(state, dims, this.expertGroup, strip);
    return { whole, release: () => made.forEach((t) => t.dispose()) };
  }

  /** Every rank's byte string (e.g. a random generator's state), in rank order. */
  gatherBytes(bytes: Uint8Array): Uint8Array[] {
    return tidy(() => {
      const lengths = this.world.allGather(tensor([bytes.length], { dtype: 'int64' })).map((t) => t.item());
      const width = Math.max(...lengths);
      const padded = new Uint8Array(width);
      padded.set(bytes);
      const all = this.world.allGather(tensor(padded, { dtype: 'uint8' }));
      return all.map((t, r) => (t.dataSync() as Uint8Array).slice(0, lengths[r]));
    });
  }

  /** Rank 0's byte string on every rank (undefined stays undefined everywhere). */
  broadcastBytes(bytes: Uint8Array | undefined): Uint8Array | undefined {
    return tidy(() => {
      const length = tensor([bytes ? bytes.length : -1], { dtype: 'int64' });
      this.world.broadcast(length);
      const n = length.item();
      if (n < 0) return undefined;
      const data = this.rank === 0 ? tensor(bytes!, { dtype: 'uint8' }) : zeros([n], { dtype: 'uint8' });
      if (n > 0) this.world.broadcast(data);
      return (data.dataSync() as Uint8Array).slice();
    });
  }

  /**
   * Rank 0's whole tensors on every rank, for the names and block shapes of `local` (this rank's
   * own tensors: blocks for sharded names, named `<prefix><param>`). Rank 0 passes what it loaded.
   * The returned map owns its tensors.
   */
  broadcastWhole(local: StateDict, fromRank0: StateDict | undefined, prefixes: readonly string[] = ['']): StateDict {
    const out: StateDict = new Map();
    const strip = (name: string) => {
      const p = prefixes.find((pre) => name.startsWith(pre));
      return p === undefined ? name : name.slice(p.length);
    };
    for (const [name, t] of local) {
      const s = this.shards.get(strip(name));
      const shape = s ? wholeShape(t.shape, s.dim, s.count) : [...t.shape];
      let value: Tensor;
      if (this.rank === 0) {
        const source = fromRank0?.get(name);
        if (!source) throw new Error(`the checkpoint has no '${name}'`);
        if (source.shape.join() !== shape.join()) throw new Error(`checkpoint tensor '${name}' has shape [${source.shape}], expected [${shape}]`);
        value = source.to(t.dtype).contiguous().clone();
      } else {
        value = zeros(shape, { dtype: t.dtype });
      }
      this.world.broadcast(value);
      out.set(name, value);
    }
    return out;
  }

  dispose(): void {
    for (const s of this.syncs) s.dispose();
    this.syncs.length = 0;
    for (const { table, rows } of this.rowTables) {
      table.lookupWith(undefined);
      rows.dispose();
    }
    this.rowTables.length = 0;
  }
}
