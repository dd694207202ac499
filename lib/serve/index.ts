// The serving layer: an HTTP inference server with dynamic batching over a workdir's model.
export { serve, type InferenceServer, type ServerStats } from './server';
export { SERVE_DEFAULTS, type ServeOptions } from './options';
export type { ModelDescription } from './protocol';
