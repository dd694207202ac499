// One batch of fuzzed calls in a child process (see runner.ts). Before each call its index goes to
// the progress file with a synchronous write, so when the process dies the parent knows which call
// was running. Problems (silent acceptances, internal errors, leaked tensors, leaked global state)
// go to the results file as JSON lines; a last line says the batch finished.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as sm from '../../lib';
import { N } from '../../lib/tensor/native';
import { judge, type FuzzCase } from './case';
import { ensureFixtures } from './fixtures';
import { generateCase } from './registry';
import { compile, makeScope, reproduction } from './scope';

export interface WorkerArgs {
  seed: number;
  start: number;
  end: number;
  /** Areas to draw from (default: all). */
  areas?: string[];
  progressFile: string;
  resultFile: string;
  fixturesRoot: string;
  workRoot: string;
}

export interface Finding {
  index: number;
  area: string;
  problems: string[];
  code: string;
  repro: string;
}

export interface BatchSummary {
  done: true;
  calls: number;
  errors: number;
  byArea: Record<string, number>;
}

/** Global state a call must leave as it found it; grad mode and threads are put back so one leak is reported once. */
function restoreGlobals(threads: number, autocastBefore: boolean): string[] {
  const leaks: string[] = [];
  if (!sm.isGradEnabled()) {
    leaks.push('left gradient recording off');
    N.setGradEnabled(true);
  }
  if (autocastOn() !== autocastBefore) leaks.push(`left autocast ${autocastOn() ? 'on' : 'off'}`);
  if (sm.getNumThreads() !== threads) {
    leaks.push(`left the thread count at ${sm.getNumThreads()}`);
    sm.setNumThreads(threads);
  }
  return leaks;
}

const autocastOn = () => sm.isAutocastEnabled('cpu') || sm.isAutocastEnabled('cuda');

export async function runBatch(args: WorkerArgs): Promise<void> {
  const fx = await ensureFixtures(args.fixturesRoot);
  const progress = fs.openSync(args.progressFile, 'a');
  const results = fs.openSync(args.resultFile, 'a');
  const threads = sm.getNumThreads();
  const summary: BatchSummary = { done: true, calls: 0, errors: 0, byArea: {} };
  for (let index = args.start; index < args.end; index++) {
    let c: FuzzCase;
    try {
      c = generateCase(args.seed, index, args.areas);
    } catch (e) {
      fs.writeSync(results, `${JSON.stringify({ index, area: 'generator', problems: [`the generator failed: ${(e as Error).stack}`], code: '', repro: '' })}\n`);
      continue;
    }
    fs.writeSync(progress, `${index}\n`);
    const dir = path.join(args.workRoot, `call-${index}`);
    const before = sm.memory().numTensors;
    const autocastBefore = autocastOn();
    let threw = false;
    let error: unknown;
    try {
      await compile(c.code, c.async ?? false)(makeScope(fx, dir));
    } catch (e) {
      threw = true;
      error = e;
    }
    const problems = judge({ ...c, mentions: c.mentions?.map((m) => m.replace('{dir}', dir)) }, threw, error);
    const after = sm.memory().numTensors;
    if (after > before) problems.push(`leaked ${after - before} tensor(s)`);
    problems.push(...restoreGlobals(threads, autocastBefore));
    fs.rmSync(dir, { recursive: true, force: true });
    summary.calls += 1;
    if (threw) summary.errors += 1;
    summary.byArea[c.area] = (summary.byArea[c.area] ?? 0) + 1;
    if (problems.length > 0) {
      const finding: Finding = { index, area: c.area, problems, code: c.code, repro: reproduction(c.code, c.async ?? false) };
      fs.writeSync(results, `${JSON.stringify(finding)}\n`);
    }
  }
  fs.writeSync(results, `${JSON.stringify(summary)}\n`);
  fs.closeSync(progress);
  fs.closeSync(results);
}

if (require.main === module) {
  const args = JSON.parse(process.argv[2]!) as WorkerArgs;
  runBatch(args).then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(3);
    },
  );
}
