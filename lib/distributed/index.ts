// The distributed layer: process groups and collectives (c10d), gradient averaging during
// backward, expert parallelism, the parallel-training context a trainer uses, and the launcher.
export {
  init,
  destroy,
  isInitialized,
  getWorld,
  newGroup,
  availableBackends,
  launchEnvironment,
  ProcessGroup,
  Work,
  type InitOptions,
  type LaunchEnvironment,
  type ReduceOp,
} from './group';
export { GradientSync, RowGradients, DEFAULT_BUCKET_BYTES, DEFAULT_FIRST_BUCKET_BYTES, type GradientSyncOptions, type GradSyncStats } from './grad-sync';
export { GroupExpertExchange, expertModules, shardExperts } from './experts';
export { ParallelTraining, type ParallelOptions, type CommStats } from './parallel';
export { launch, workerEnvironment, bindToLauncher, LAUNCHER_PID_ENV, type LaunchOptions, type LaunchResult } from './launcher';
