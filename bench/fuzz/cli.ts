// npm run fuzz -- --calls N --seed S [--jobs J] [--areas a,b] [--call K] [--batch B] [--json FILE]
// Runs N seeded fuzzed calls over the public API and prints crashes and findings, each with a
// one-line reproduction; exits 1 if there is any. --call K reruns call K of seed S alone.
import * as fs from 'node:fs';
import { AREAS } from './registry';
import { runFuzz, type FuzzReport } from './runner';

function parse(argv: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([\w-]+)(?:=(.*))?$/.exec(argv[i]!);
    if (!m) throw new Error(`unexpected argument '${argv[i]}'`);
    out[m[1]!] = m[2] ?? argv[++i] ?? '';
  }
  return out;
}

function count(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got '${value}'`);
  return n;
}

export function formatReport(report: FuzzReport): string {
  const lines = [
    `fuzz: seed ${report.seed}, ${report.calls} calls in ${report.seconds.toFixed(0)} s (${report.errors} refused with an error), ${report.crashes.length} crashes, ${report.findings.length} findings`,
    `  by area: ${Object.entries(report.byArea).sort().map(([a, n]) => `${a} ${n}`).join(', ')}`,
  ];
  for (const c of report.crashes) {
    lines.push(`CRASH call ${c.index} (${c.area}): ${c.how}`);
    if (c.cause !== undefined) lines.push(`  set up by call ${c.cause}: ${c.causeCode}`);
    lines.push(`  call: ${c.code}`, `  repro: ${c.repro}`, `  rerun: npm run fuzz -- --seed ${report.seed} --call ${c.cause ?? c.index}${c.cause !== undefined ? ` --calls ${c.index - c.cause + 1}` : ''}`);
    if (c.stderr) lines.push(`  stderr: ${c.stderr.replace(/\n/g, '\n          ')}`);
  }
  for (const f of report.findings) {
    lines.push(`FINDING call ${f.index} (${f.area}): ${f.problems.join('; ')}`, `  call: ${f.code.length > 600 ? `${f.code.slice(0, 600)}...` : f.code}`, `  rerun: npm run fuzz -- --seed ${report.seed} --call ${f.index}`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  const seed = count(a['seed'], 'seed', 1);
  const single = a['call'] !== undefined ? count(a['call'], 'call', 0) : undefined;
  const areas = a['areas'] ? a['areas'].split(',') : undefined;
  for (const area of areas ?? []) if (!(area in AREAS) && !area.startsWith('selftest.')) throw new Error(`unknown area '${area}'; known: ${Object.keys(AREAS).join(', ')}`);
  const report = await runFuzz({
    seed,
    first: single ?? 0,
    calls: single !== undefined ? count(a['calls'], 'calls', 1) : count(a['calls'], 'calls', 10000),
    areas,
    jobs: count(a['jobs'], 'jobs', 1),
    batchSize: count(a['batch'], 'batch', 500),
    log: (line) => console.error(line),
  });
  console.log(formatReport(report));
  if (a['json']) fs.writeFileSync(a['json'], JSON.stringify(report, null, 2));
  if (report.crashes.length || report.findings.length) process.exitCode = 1;
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(`fuzz: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 2;
  });
}
