// Fine-tuning task readers (REFERENCE §3): GLUE, SuperGLUE and the built-in spam task.
export type { ReadOptions, ReadResult, TaskExample, TaskSpec } from './types';
export { TASKS, getTask } from './registry';
export { GLUE_TASKS } from './glue';
export { SUPERGLUE_TASKS } from './superglue';
export { SPAM_TASK, devKeys, mailBody } from './spam';
export { holdOutRows, type HeldOutSplit } from './holdout';
