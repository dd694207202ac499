// What a fuzzed call's code can use: the library, node's fs and path, a fresh folder, the fixtures,
// and small helpers for valid tensors. `run` executes one call's code as a standalone reproduction.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sm from '../../lib';
import { OracleFailure } from './case';
import { defaultFixturesRoot, ensureFixtures, type Fixtures } from './fixtures';

export interface Scope {
  sm: typeof sm;
  fs: typeof fs;
  path: typeof path;
  /** An empty folder of this call's own. */
  dir: string;
  fx: Fixtures;
  /** A valid tensor of this shape and dtype with seeded values (small integers for integral dtypes). */
  mk(shape: readonly number[], dtype?: sm.DType, seed?: number): sm.Tensor;
  /** int64 indices uniform in [lo, hi). */
  mkIndex(shape: readonly number[], lo: number, hi: number, seed?: number): sm.Tensor;
  /** Throws an OracleFailure (a wrong result, reported as such) unless ok. */
  check(ok: boolean, what: string): void;
}

const INTEGRAL: readonly string[] = ['int64', 'int32', 'int16', 'int8', 'uint8'];

function mk(shape: readonly number[], dtype: sm.DType = 'float32', seed = 1): sm.Tensor {
  return sm.tidy(() => {
    const generator = new sm.Generator(seed);
    try {
      if (dtype === 'bool') return sm.rand([...shape], { generator }).gt(0.5);
      if (INTEGRAL.includes(dtype)) return sm.randint(dtype === 'uint8' ? 0 : -4, 5, [...shape], { generator, dtype });
      return sm.randn([...shape], { generator }).mul(2).to(dtype);
    } finally {
      generator.dispose();
    }
  });
}

function mkIndex(shape: readonly number[], lo: number, hi: number, seed = 2): sm.Tensor {
  const generator = new sm.Generator(seed);
  try {
    return sm.randint(lo, hi, [...shape], { generator });
  } finally {
    generator.dispose();
  }
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new OracleFailure(what);
}

/** The scope of one call; its folder is made on first use (most calls never touch a file). */
export function makeScope(fx: Fixtures, dir: string): Scope {
  let made = false;
  return {
    sm, fs, path, fx, mk, mkIndex, check,
    get dir() {
      if (!made) fs.mkdirSync(dir, { recursive: true });
      made = true;
      return dir;
    },
  };
}

export type CaseFunction = (scope: Scope) => Promise<unknown>;

/** The function of a call's code (sync bodies run inside sm.tidy). */
export function compile(code: string, isAsync: boolean): CaseFunction {
  const body = isAsync ? code : `sm.tidy(() => { ${code}\n});`;
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => CaseFunction;
  return new AsyncFunction('{ sm, fs, path, dir, fx, mk, mkIndex, check }', body);
}

/** The one-line reproduction of a call: node -e with this module's run(). */
export function reproduction(code: string, isAsync: boolean): string {
  const body = isAsync ? code : `sm.tidy(() => { ${code} });`;
  const script = `require(${JSON.stringify(__filename.replace(/\.ts$/, '.js'))}).run(async ({ sm, fs, path, dir, fx, mk, mkIndex, check }) => { ${body} })`;
  return `node -e '${script.replace(/'/g, "'\\''")}'`;
}

/** Runs one call's code outside the fuzzer and says how it ended (for a pasted reproduction). */
export async function run(fn: CaseFunction): Promise<void> {
  const fx = await ensureFixtures(defaultFixturesRoot());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparse-mixer-fuzz-'));
  const before = sm.memory().numTensors;
  try {
    await fn(makeScope(fx, dir));
    console.log('returned normally');
  } catch (e) {
    console.log(`threw ${(e as Error).name}: ${(e as Error).message}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    console.log(`live tensors: ${before} before, ${sm.memory().numTensors} after`);
  }
}
