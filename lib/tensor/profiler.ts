// Where the time goes: libtorch's profiler records every op (native/profiler.cc); named scopes mark
// the parts of a model (the model's layers open them: 'attention', 'moe/experts', ...). A breakdown
// gives each part its forward time (the ops run inside its scope) and its backward time (the
// backward nodes its forward created, found by their autograd sequence numbers). When the profiler
// is off, scope() only calls its function.
import { N } from './native';

let active = false;

/** Runs fn inside a named scope of the running profile (just runs it when none is running). */
export function scope<T>(label: string, fn: () => T): T {
  if (!active) return fn();
  N.profilerPushScope(label);
  try {
    return fn();
  } finally {
    N.profilerPopScope();
  }
}

export function isProfiling(): boolean {
  return active;
}

/** The raw record: every op and scope as a range, and each scope's autograd sequence numbers. */
export interface Profile {
  names: string[];
  name: Int32Array;
  thread: Int32Array;
  userScope: Int32Array;
  /** Microseconds on the CPU clock. */
  start: Float64Array;
  end: Float64Array;
  /** The autograd sequence number recorded with the range (-1 when none). */
  sequence: Float64Array;
  /** Microseconds on the GPU (CUDA profiles), else -1. */
  cuda: Float64Array;
  scopes: { name: string[]; firstSequence: Float64Array; endSequence: Float64Array };
}

/** Records ops until stopProfiler(); with cuda, also their GPU time (CUDA events). */
export function startProfiler(options: { cuda?: boolean } = {}): void {
  N.profilerStart(options.cuda ?? false);
  active = true;
}

export function stopProfiler(): Profile {
  active = false;
  return N.profilerStop();
}

export interface PartTime {
  forwardMs: number;
  backwardMs: number;
}

/**
 * Milliseconds per scope label, forward and backward: each op's own time (its range minus the ops
 * nested in it) goes to the innermost scope around it; inside a scope named `backwardScope`, to the
 * scope whose forward created the backward node it belongs to. Time outside every scope goes to
 * 'unscoped', gradient accumulation into .grad to 'backward (accumulate grads)', other backward
 * nodes no scope created to 'backward (unattributed)'. With `gpu`, GPU times replace CPU ones
 * where recorded.
 */
export function breakdown(p: Profile, options: { backwardScope?: string; gpu?: boolean } = {}): Record<string, PartTime> {
  const backwardScope = options.backwardScope ?? 'backward';
  const n = p.name.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => p.thread[a]! - p.thread[b]! || p.start[a]! - p.start[b]! || p.end[b]! - p.end[a]!);
  const parent = new Int32Array(n).fill(-1);
  const childTime = new Float64Array(n);
  const stack: number[] = [];
  const duration = (i: number) => (options.gpu && p.cuda[i]! >= 0 ? p.cuda[i]! : p.end[i]! - p.start[i]!);
  for (const i of order) {
    while (stack.length && (p.thread[stack.at(-1)!] !== p.thread[i] || p.end[stack.at(-1)!]! <= p.start[i]!)) stack.pop();
    if (stack.length) {
      parent[i] = stack.at(-1)!;
      childTime[parent[i]!] += duration(i);
    }
    stack.push(i);
  }
  // The engine wraps each backward node in an "evaluate_function" range that also sums the node's
  // output gradients into the next nodes' inputs: that work belongs with the node.
  const wrapped = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const up = parent[i]!;
    if (p.sequence[i]! >= 0 && up >= 0 && p.names[p.name[up]!]!.startsWith('autograd::engine::evaluate_function')) wrapped.set(up, i);
  }
  // The innermost scope (smallest sequence range) that created a backward node.
  const scopes = p.scopes.name.map((name, k) => ({ name, first: p.scopes.firstSequence[k]!, end: p.scopes.endSequence[k]! }));
  const creator = new Map<number, string>();
  const creatorOf = (seq: number): string | undefined => {
    if (!creator.has(seq)) {
      let best: { name: string; first: number; end: number } | undefined;
      for (const s of scopes) if (s.first <= seq && seq < s.end && (!best || s.end - s.first < best.end - best.first)) best = s;
      creator.set(seq, best?.name ?? '');
    }
    return creator.get(seq) || undefined;
  };
  // CPU backward runs inside the backward scope; CUDA runs its nodes on the engine's own threads.
  const mainThreads = new Set<number>();
  for (let i = 0; i < n; i++) if (p.userScope[i]) mainThreads.add(p.thread[i]!);
  const out: Record<string, PartTime> = {};
  const add = (label: string, phase: keyof PartTime, ms: number) => {
    if (ms <= 0) return;
    const t = (out[label] ??= { forwardMs: 0, backwardMs: 0 });
    t[phase] += ms;
  };
  for (let i = 0; i < n; i++) {
    const self = Math.max(0, duration(i) - childTime[i]!) / 1000;
    // Walk outwards: the innermost scope, and the innermost backward node on the way.
    let label: string | undefined;
    let node = -1;
    let accumulate = false;
    let inBackward = false;
    for (let a = i; a >= 0; a = parent[a]!) {
      const name = p.names[p.name[a]!]!;
      if (p.userScope[a]) {
        if (name === backwardScope) {
          inBackward = true;
          break;
        }
        label ??= name;
      } else if (node < 0 && !accumulate) {
        // Gradient accumulation into .grad belongs to no forward op (it has no sequence number).
        if (name.includes('AccumulateGrad')) accumulate = true;
        else if (p.sequence[a]! >= 0) node = a;
        else if (wrapped.has(a)) node = wrapped.get(a)!;
      }
    }
    if (inBackward || (label === undefined && (node >= 0 || accumulate) && !mainThreads.has(p.thread[i]!))) {
      add(accumulate ? 'backward (accumulate grads)' : (node >= 0 && creatorOf(p.sequence[node]!)) || 'backward (unattributed)', 'backwardMs', self);
    } else {
      add(label ?? 'unscoped', 'forwardMs', self);
    }
  }
  return out;
}
