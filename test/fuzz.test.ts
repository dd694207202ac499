// The fuzz harness in CI: a short seeded pass over the whole public API (bench/fuzz/), and proof
// that the harness catches crashes and traces a crash set up by an earlier call back to it.
// Long runs: npm run fuzz -- --calls 100000 --seed S.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReport } from '../bench/fuzz/cli';
import { generateCase } from '../bench/fuzz/registry';
import { runFuzz } from '../bench/fuzz/runner';

test('a seeded fuzz pass: no crash, no silent acceptance, no internal error, no leaked tensor', { timeout: 600_000 }, async () => {
  const report = await runFuzz({ seed: 15, calls: 4000, batchSize: 1000 });
  assert.equal(report.calls, 4000);
  assert.ok(Object.keys(report.byArea).length >= 16, `every area was drawn: ${Object.keys(report.byArea).join(', ')}`);
  assert.ok(report.errors > 1000 && report.errors < 3500, `a mix of valid and invalid calls (${report.errors} refused)`);
  assert.equal(report.crashes.length + report.findings.length, 0, formatReport(report));
});

test('the harness reports a crash at the exact call, with a reproduction, and carries on', { timeout: 300_000 }, async () => {
  const areas = ['selftest.crash', 'tensor.ops'];
  const calls = 12;
  const crashing = Array.from({ length: calls }, (_, i) => i).filter((i) => generateCase(7, i, areas).area === 'selftest.crash');
  assert.ok(crashing.length >= 2 && crashing.length < calls, 'the seed gives both kinds of call');
  const report = await runFuzz({ seed: 7, calls, areas, batchSize: calls });
  assert.deepEqual(report.crashes.map((c) => c.index), crashing);
  for (const c of report.crashes) {
    assert.equal(c.how, 'killed by SIGSEGV');
    assert.equal(c.cause, undefined);
    assert.match(c.repro, /^node -e '.*process\.kill\(process\.pid, "SIGSEGV"\).*'$/);
  }
  assert.equal(report.calls, calls, 'every call ran: the batch went on after each crash');
});

test('a crash set up by an earlier call is traced back to that call', { timeout: 300_000 }, async () => {
  const areas = ['selftest.arm', 'selftest.spring'];
  const calls = 10;
  const kinds = Array.from({ length: calls }, (_, i) => generateCase(1, i, areas).area);
  const spring = kinds.indexOf('selftest.spring', kinds.indexOf('selftest.arm') + 1);
  const arm = kinds.lastIndexOf('selftest.arm', spring); // the latest call that still sets the trap
  assert.ok(arm >= 0 && spring > arm, `the seed arms the trap before springing it: ${kinds.join(', ')}`);
  const report = await runFuzz({ seed: 1, calls: spring + 1, areas, batchSize: calls });
  assert.equal(report.crashes.length, 1, formatReport(report));
  assert.equal(report.crashes[0]!.index, spring);
  assert.equal(report.crashes[0]!.cause, arm, 'the culprit, not the call that happened to be running');
  assert.match(formatReport(report), new RegExp(`set up by call ${arm}: globalThis.__fuzzTrap = true;`));
});
