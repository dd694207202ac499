// Deterministic freeing of native tensors: dispose(), tidy() scopes and keep(), with a
// FinalizationRegistry only as a safety net.
//
// Registering every tensor with a FinalizationRegistry costs ~0.8 µs, about as much as a small
// op. So a tensor created outside any scope first goes to a nursery; the nursery is flushed after
// a few thousand tensors or on the next turn of the event loop, and only tensors that are still
// alive then (not disposed) get registered. Short-lived tensors never pay for the safety net.
import { N } from './native';
import type { DeviceMemory } from './native-api';

/** What lifetime management needs to know about a tensor. */
export interface Owned {
  /** The native handle, or -1 once disposed. */
  _h: number;
  /** Exempt from every tidy() scope (see keep()). */
  _kept: boolean;
  /** Registered with the finalization safety net. */
  _registered: boolean;
}

const finalizer = new FinalizationRegistry<number>((handle) => N.release(handle));
const NURSERY_LIMIT = 4096;
let nursery: Owned[] = [];
let flushScheduled = false;
const scopes: Owned[][] = [];

function flushNursery(): void {
  flushScheduled = false;
  const young = nursery;
  nursery = [];
  for (const t of young) {
    if (t._h >= 0 && !t._registered) {
      finalizer.register(t, t._h, t);
      t._registered = true;
    }
  }
}

function toNursery(t: Owned): void {
  nursery.push(t);
  if (nursery.length >= NURSERY_LIMIT) {
    flushNursery();
  } else if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushNursery).unref();
  }
}

/** Called once for every new tensor. */
export function adopt(t: Owned): void {
  const scope = scopes[scopes.length - 1];
  if (scope !== undefined) scope.push(t);
  else toNursery(t);
}

/** Frees one tensor now. Safe to call twice. */
export function release(t: Owned): void {
  if (t._h < 0) return;
  N.release(t._h);
  t._h = -1;
  if (t._registered) {
    finalizer.unregister(t);
    t._registered = false;
  }
}

// Reused buffer of handles for releasing a whole scope in one native call.
let releaseBuffer = new Int32Array(1024);

/** Queues a tensor's handle for the next flushReleases() and marks it disposed. */
function queueRelease(t: Owned, count: number): number {
  if (count >= releaseBuffer.length) {
    const bigger = new Int32Array(releaseBuffer.length * 2);
    bigger.set(releaseBuffer);
    releaseBuffer = bigger;
  }
  if (t._registered) {
    finalizer.unregister(t);
    t._registered = false;
  }
  releaseBuffer[count] = t._h;
  t._h = -1;
  return count + 1;
}

function isOwned(value: unknown): value is Owned {
  return typeof value === 'object' && value !== null && '_h' in value && '_kept' in value;
}

/** Every tensor reachable from a value: itself, arrays, Maps, Sets and plain objects. */
export function collectTensors(value: unknown, into: Set<Owned>, depth = 0): Set<Owned> {
  if (depth > 16 || value === null || typeof value !== 'object') return into;
  if (isOwned(value)) {
    into.add(value);
  } else if (Array.isArray(value) || value instanceof Set) {
    for (const v of value) collectTensors(v, into, depth + 1);
  } else if (value instanceof Map) {
    for (const v of value.values()) collectTensors(v, into, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, into, depth + 1);
  }
  return into;
}

const NO_SURVIVORS: ReadonlySet<Owned> = new Set();

function endScope(scope: Owned[], result: unknown): void {
  const survivors = typeof result === 'object' && result !== null ? collectTensors(result, new Set()) : NO_SURVIVORS;
  const parent = scopes[scopes.length - 1];
  let count = 0;
  for (const t of scope) {
    if (t._h < 0) continue;
    if (t._kept || survivors.has(t)) {
      if (t._kept || parent === undefined) toNursery(t);
      else parent.push(t);
    } else {
      count = queueRelease(t, count);
    }
  }
  if (count > 0) N.releaseMany(releaseBuffer, count);
}

/**
 * Runs fn and frees every tensor created inside it, except the tensors it returns (found in
 * arrays and plain objects too), which move to the enclosing scope, and tensors passed to keep().
 * Like tf.tidy, fn must be synchronous.
 */
export function tidy<T>(fn: () => T): T {
  if (typeof fn !== 'function') throw new TypeError('tidy() takes a function');
  const scope: Owned[] = [];
  scopes.push(scope);
  let result: T | undefined;
  try {
    result = fn();
    if (result instanceof Promise) {
      throw new TypeError('tidy() cannot take an async function: tensors would be freed before it finishes');
    }
    return result;
  } finally {
    scopes.pop();
    endScope(scope, result);
  }
}

/** Exempts a tensor from every tidy() scope; the caller disposes it. Returns it. */
export function keep<T extends Owned>(t: T): T {
  t._kept = true;
  return t;
}

/** Frees every tensor reachable from the value (a tensor, an array, a plain object). */
export function dispose(value: unknown): void {
  for (const t of collectTensors(value, new Set())) release(t);
}

export interface MemoryInfo {
  /** Live tensors (handles) over all devices. */
  numTensors: number;
  /** Bytes of unique storage over all devices (views share storage and are counted once). */
  numBytes: number;
  devices: Record<string, DeviceMemory>;
}

/** Live tensors and bytes per device, counted by the addon. */
export function memory(): MemoryInfo {
  const stats = N.memoryStats();
  let numBytes = 0;
  for (const d of Object.values(stats.devices)) numBytes += d.numBytes;
  return { numTensors: stats.numTensors, numBytes, devices: stats.devices };
}
