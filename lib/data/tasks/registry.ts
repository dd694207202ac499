// Every fine-tuning task by name, with forgiving look-up: names are case-insensitive, and the
// GLUE folder names of the published layout ('SST-2', 'STS-B', ...) and the short GLUE names
// ('sst2') are accepted too, since that is how people and download scripts spell them.
import { GLUE_TASKS } from './glue';
import { SPAM_TASK } from './spam';
import { SUPERGLUE_TASKS } from './superglue';
import type { TaskSpec } from './types';

export const TASKS: readonly TaskSpec[] = [...GLUE_TASKS, ...SUPERGLUE_TASKS, SPAM_TASK];

const BY_NAME = new Map<string, TaskSpec>();
for (const task of TASKS) {
  BY_NAME.set(task.name, task);
  if (task.folderName !== undefined) BY_NAME.set(task.folderName.toLowerCase(), task);
  if (task.benchmark === 'glue') {
    BY_NAME.set(task.name.slice('glue/'.length), task);
    BY_NAME.set(task.folderName!.slice('glue/'.length).toLowerCase(), task);
  }
}

export function getTask(name: string): TaskSpec {
  const task = BY_NAME.get(name.trim().toLowerCase());
  if (task === undefined) {
    throw new Error(`unknown task "${name}"; known tasks: ${TASKS.map((t) => t.name).join(', ')}`);
  }
  return task;
}
