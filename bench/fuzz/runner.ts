// The fuzzing run: calls [0, calls) in batches, each batch in a child process (worker.ts). A child
// that dies (a signal, an abort, an exit) is a crash of the call it was running; when that call
// does not crash on its own, the earlier calls of the batch are searched for the one that set the
// crash up. The batch then goes on after the crashed call. A child that stops making progress is
// killed and its call reported as a hang.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureFixtures } from './fixtures';
import { generateCase } from './registry';
import { reproduction } from './scope';
import type { BatchSummary, Finding, WorkerArgs } from './worker';

export interface FuzzOptions {
  seed: number;
  calls: number;
  /** Start at this call index (default 0): with calls = 1, reruns one call. */
  first?: number;
  areas?: string[];
  batchSize?: number;
  /** Child processes at a time. */
  jobs?: number;
  /** A child silent for this long is killed and its call reported as a hang. */
  hangSeconds?: number;
  log?: (line: string) => void;
}

export interface Crash {
  /** The call running when the process died. */
  index: number;
  /** The earlier call that set the crash up, when the crashing call alone does not crash. */
  cause?: number;
  area: string;
  how: string;
  stderr: string;
  code: string;
  repro: string;
  causeCode?: string;
}

export interface FuzzReport {
  seed: number;
  calls: number;
  errors: number;
  byArea: Record<string, number>;
  crashes: Crash[];
  findings: Finding[];
  seconds: number;
}

interface ChildResult {
  summary?: BatchSummary;
  findings: Finding[];
  /** The last call started, -1 if none. */
  last: number;
  how?: string;
  stderr: string;
}

const WORKER = path.join(__dirname, 'worker.js');

function runChild(args: Omit<WorkerArgs, 'progressFile' | 'resultFile'>, scratch: string, hangSeconds: number): Promise<ChildResult> {
  const tag = `${args.start}-${args.end}-${process.hrtime.bigint()}`;
  const full: WorkerArgs = { ...args, progressFile: path.join(scratch, `progress-${tag}`), resultFile: path.join(scratch, `results-${tag}`) };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [WORKER, JSON.stringify(full)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    let lastSize = -1;
    let quiet = 0;
    let hung = false;
    const watch = setInterval(() => {
      let size = 0;
      try {
        size = fs.statSync(full.progressFile).size;
      } catch {
        size = 0;
      }
      quiet = size === lastSize ? quiet + 1 : 0;
      lastSize = size;
      if (quiet >= hangSeconds) {
        hung = true;
        child.kill('SIGKILL');
      }
    }, 1000);
    child.on('exit', (code, signal) => {
      clearInterval(watch);
      const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
      const progress = read(full.progressFile).trim().split('\n').filter(Boolean);
      const lines = read(full.resultFile).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Finding | BatchSummary);
      fs.rmSync(full.progressFile, { force: true });
      fs.rmSync(full.resultFile, { force: true });
      const summary = lines.find((l): l is BatchSummary => 'done' in l);
      const findings = lines.filter((l): l is Finding => !('done' in l));
      const last = progress.length ? Number(progress[progress.length - 1]) : -1;
      const how = hung ? `no progress for ${hangSeconds}s (hang)` : summary && code === 0 ? undefined : signal ? `killed by ${signal}` : `exited with code ${code}`;
      resolve({ summary, findings, last, how, stderr });
    });
  });
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const started = Date.now();
  const log = options.log ?? (() => {});
  const areas = options.areas ?? [];
  const first = options.first ?? 0;
  const end = first + options.calls;
  const batchSize = options.batchSize ?? 500;
  const hangSeconds = options.hangSeconds ?? 120;
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'sparse-mixer-fuzz-run-'));
  const fixturesRoot = path.join(scratch, 'fixtures');
  await ensureFixtures(fixturesRoot);
  const report: FuzzReport = { seed: options.seed, calls: 0, errors: 0, byArea: {}, crashes: [], findings: [], seconds: 0 };
  const base = { seed: options.seed, ...(areas.length ? { areas } : {}), fixturesRoot, workRoot: path.join(scratch, 'work') };
  const child = (start: number, stop: number) => runChild({ ...base, start, end: stop }, scratch, hangSeconds);
  const caseAt = (i: number) => generateCase(options.seed, i, areas.length ? areas : undefined);

  /** Whether calls [from, to] crash when run together in a fresh process. */
  const crashes = async (from: number, to: number) => (await child(from, to + 1)).how !== undefined;

  async function batch(start: number, stop: number): Promise<void> {
    let from = start;
    while (from < stop) {
      const r = await child(from, stop);
      report.findings.push(...r.findings);
      if (r.how === undefined && r.summary) {
        report.calls += r.summary.calls;
        report.errors += r.summary.errors;
        for (const [a, n] of Object.entries(r.summary.byArea)) report.byArea[a] = (report.byArea[a] ?? 0) + n;
        return;
      }
      const how = r.how ?? 'exited without finishing its batch';
      const index = r.last < from ? from : r.last;
      report.calls += index - from + 1;
      const c = caseAt(index);
      const crash: Crash = { index, area: c.area, how, stderr: r.stderr.trim().split('\n').slice(-5).join('\n'), code: c.code, repro: reproduction(c.code, c.async ?? false) };
      if (index > from && !how.includes('hang') && !(await crashes(index, index))) {
        // Set up by an earlier call: find the latest start that still crashes (binary search).
        let lo = from;
        let hi = index - 1;
        if (await crashes(hi, index)) lo = hi;
        else {
          while (lo < hi) {
            const mid = Math.floor((lo + hi + 1) / 2);
            if (await crashes(mid, index)) lo = mid;
            else hi = mid - 1;
          }
        }
        const cause = caseAt(lo);
        crash.cause = lo;
        crash.causeCode = cause.code;
      }
      report.crashes.push(crash);
      log(`CRASH at call ${index} (${crash.area}): ${crash.how}${crash.cause !== undefined ? `, set up by call ${crash.cause}` : ''}`);
      from = index + 1;
    }
  }

  const starts: number[] = [];
  for (let s = first; s < end; s += batchSize) starts.push(s);
  const jobs = Math.max(1, options.jobs ?? 1);
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      while (next < starts.length) {
        const s = starts[next++]!;
        await batch(s, Math.min(end, s + batchSize));
        done += 1;
        log(`batch ${done}/${starts.length} done: ${report.calls} calls, ${report.crashes.length} crashes, ${report.findings.length} findings`);
      }
    }),
  );
  fs.rmSync(scratch, { recursive: true, force: true });
  report.findings.sort((a, b) => a.index - b.index);
  report.crashes.sort((a, b) => a.index - b.index);
  report.seconds = (Date.now() - started) / 1000;
  return report;
}
