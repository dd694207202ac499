// Learning-rate schedules (REFERENCE §4): base · linear warmup · linear decay, and the common
// alternatives.

export type ScheduleKind = 'linear' | 'constant' | 'rsqrt' | 'cosine';

export interface ScheduleOptions {
  base: number;
  warmupSteps: number;
  /** Steps of decay after warmup (linear: to 0; cosine: to 0 over this many steps). */
  decaySteps: number;
  kind?: ScheduleKind;
}

/**
 * linear: base · min(1, step/warmup) · max(0, 1 − (step − warmup)/decaySteps), the reference's;
 * constant: base after warmup; rsqrt: base · min(1, step/warmup) · sqrt(warmup / max(step, warmup));
 * cosine: base · min(1, step/warmup) · ½(1 + cos(π · min(1, (step − warmup)/decaySteps))).
 */
export function learningRate(step: number, o: ScheduleOptions): number {
  const warm = o.warmupSteps > 0 ? Math.min(1, step / o.warmupSteps) : 1;
  const after = Math.max(0, step - o.warmupSteps);
  switch (o.kind ?? 'linear') {
    case 'linear':
      return o.base * warm * Math.max(0, 1 - after / o.decaySteps);
    case 'constant':
      return o.base * warm;
    case 'rsqrt':
      return o.base * warm * Math.sqrt(Math.max(1, o.warmupSteps) / Math.max(step, o.warmupSteps, 1));
    case 'cosine':
      return o.base * warm * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, after / o.decaySteps)));
  }
}
