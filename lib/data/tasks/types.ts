// The shape of a fine-tuning task (REFERENCE §3 "Fine-tuning tasks") and of the rows its
// readers produce. Readers only parse files; tokenisation and batching happen elsewhere.
import type { SkippedRow } from '../errors';

export interface TaskExample {
  /** Text segments in order; segment k gets type id k. */
  segments: string[];
  /** Class index, regression score, or undefined for unlabeled (test) rows. */
  label: number | undefined;
  /** Rows sharing a group are scored together (COPA, MultiRC, ReCoRD); undefined otherwise. */
  group?: string;
  /** ReCoRD: the candidate entity of this row and the gold answer texts of its query. */
  entity?: string;
  answers?: string[];
  /** Where the row came from: file, 1-based line, and the dataset's own index/id when it has one. */
  source: { file: string; line: number; id?: string };
}

export interface ReadOptions {
  /** Skip malformed rows instead of throwing; they are returned in `skipped`. */
  skipBadRows?: boolean;
}

export interface ReadResult {
  examples: TaskExample[];
  skipped: SkippedRow[];
}

export interface TaskSpec {
  name: string;
  benchmark: 'glue' | 'superglue' | 'builtin';
  /** Number of logits: 1 for STS-B, COPA and ReCoRD (scored), 3 for MNLI and CB, else 2. */
  numClasses: number;
  /** True for STS-B, COPA and ReCoRD: trained with squared error on logit 0 (REFERENCE §3). */
  regression: boolean;
  /** Rows are scored per group (COPA, MultiRC, ReCoRD). */
  grouped: boolean;
  /** Names of the segments in order, e.g. ['question', 'passage']. */
  segmentNames: string[];
  /** Label names in class order (empty for regression). */
  labelNames: string[];
  /** Metric names of REFERENCE §3's table. */
  metrics: string[];
  /** Split name -> file name inside the task folder. The built-in spam task ignores the folder. */
  splits: Record<string, string>;
  /** The split used for evaluation by default ('dev', 'val', or 'dev_matched'). */
  evalSplit: string;
  /** The task's folder under the data root in the published layout, e.g. 'glue/SST-2' (not for built-in tasks). */
  folderName?: string;
  /** Reads one split from the task's folder (e.g. <data>/glue/SST-2). */
  read(folder: string, split: string, options?: ReadOptions): ReadResult;
}
