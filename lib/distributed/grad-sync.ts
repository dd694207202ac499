// Gradient averaging overlapped with backward (native/distributed/grad_sync.cc): the bucketing of
// PyTorch's DistributedDataParallel, on c10d collectives and autograd hooks.
import type { RowLookup } from '../nn';
import type { Tensor } from '../tensor';
import type { GradSyncStats } from '../tensor/native-api';
import { N } from '../tensor/native';
import { handleOf, Tensor as TensorClass } from '../tensor/tensor';
import type { ProcessGroup } from './group';

export type { GradSyncStats };

export interface GradientSyncOptions {
  /** Bucket size in bytes (DDP's default: 25 MiB). */
  bucketBytes?: number;
  /** The first bucket, which holds the last layers' gradients, small so communication starts early (DDP: 1 MiB). */
  firstBucketBytes?: number;
  /** Gradients are divided by this before they are summed (default: the group's size, i.e. averaged). */
  divisor?: number;
  /** Tables (indices into params) whose looked-up rows arrive through a RowGradients sink, not backward. */
  rowTables?: readonly { param: number; rows: RowGradients }[];
}

/**
 * Where a lookup table's row gradients wait for the step's end (native/distributed/grad_sync.cc):
 * the table is read without an autograd edge, so its other uses (a tied output layer) reduce its
 * dense gradient during backward, and only the looked-up rows are exchanged after backward.
 */
export class RowGradients implements RowLookup {
  private id: number | undefined = N.rowSinkNew();

  get sink(): number {
    if (this.id === undefined) throw new Error('RowGradients was disposed');
    return this.id;
  }

  lookup(table: Tensor, ids: Tensor): Tensor {
    return TensorClass._wrap(N.rowSinkLookup(this.sink, handleOf(table, 'table'), handleOf(ids, 'ids')));
  }

  dispose(): void {
    if (this.id !== undefined) N.rowSinkFree(this.id);
    this.id = undefined;
  }
}

export const DEFAULT_BUCKET_BYTES = 25 * 1024 * 1024;
export const DEFAULT_FIRST_BUCKET_BYTES = 1024 * 1024;

/**
 * Averages the gradients of `params` over `group` during backward. Per optimizer step: call
 * `prepare(sync)` before each backward (sync only on the last micro-step of gradient accumulation:
 * the others accumulate locally, like DDP's no_sync) and `finish()` after the last one.
 */
export class GradientSync {
  private id: number | undefined;
  /** Parameter indices per bucket, in the order the buckets are reduced. */
  readonly buckets: number[][];

  constructor(
    readonly group: ProcessGroup,
    readonly params: readonly Tensor[],
    options: GradientSyncOptions = {},
  ) {
    const r = N.gradSyncNew(
      group.id,
      params.map((p, i) => handleOf(p, `params[${i}]`)),
      options.bucketBytes ?? DEFAULT_BUCKET_BYTES,
      options.firstBucketBytes ?? DEFAULT_FIRST_BUCKET_BYTES,
      options.divisor ?? group.size,
      (options.rowTables ?? []).flatMap((t) => [t.param, t.rows.sink]),
    );
    this.id = r.id;
    this.buckets = r.buckets;
  }

  private get handle(): number {
    if (this.id === undefined) throw new Error('GradientSync was disposed');
    return this.id;
  }

  prepare(sync: boolean): void {
    N.gradSyncPrepare(this.handle, sync);
  }

  /** Waits for every bucket and writes the averages into .grad; the timings of this step. */
  finish(): GradSyncStats {
    try {
      return N.gradSyncFinish(this.handle);
    } catch (error) {
      throw error instanceof Error ? new Error(error.message.replace(/^gradSyncFinish: /, '')) : error;
    }
  }

  dispose(): void {
    if (this.id !== undefined) N.gradSyncFree(this.id);
    this.id = undefined;
  }
}
