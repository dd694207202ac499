// Reports of `bench models`: a plain-text table, a Markdown report and an SVG bar chart of
// throughput per model and pass, ours next to PyTorch.
import { breakdownTables } from './breakdown_report';
import type { Measurement, ModelsBenchReport, Pass } from './models';

const PASS_NAMES: Record<Pass, string> = { train: 'training step', infer: 'inference' };

function mib(bytes: number | null | undefined): string {
  return bytes == null ? '–' : `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

function fixed(x: number | null | undefined, digits: number): string {
  return x == null ? '–' : x.toFixed(digits);
}

function millions(n: number): string {
  return `${(n / 1e6).toFixed(1)}M`;
}

interface TableRow {
  model: string;
  shape: string;
  params: string;
  pass: string;
  ours: string;
  pytorch: string;
  ratio: string;
  minRatio: string;
  tokens: string;
  mfu: string;
  memOurs: string;
  memPytorch: string;
  loss: string;
  hf: string;
  ratioHf: string;
}

const HEADERS: TableRow = {
  model: 'model',
  shape: 'batch',
  params: 'params',
  pass: 'pass',
  ours: 'ours s/step',
  pytorch: 'PyTorch s/step',
  ratio: 'ours/PyTorch',
  minRatio: 'min ratio',
  tokens: 'ours tokens/s',
  mfu: 'MFU',
  memOurs: 'peak mem ours',
  memPytorch: 'peak mem PyTorch',
  loss: '|Δloss|',
  hf: 'HF BERT s/step',
  ratioHf: 'ours/HF',
};

/** The table's columns: the Hugging Face ones only when some row has an HF BERT timing. */
function columns(report: ModelsBenchReport): (keyof TableRow)[] {
  const withHf = report.rows.some((r) => Object.values(r.passes).some((p) => p.hf_bert));
  return (Object.keys(HEADERS) as (keyof TableRow)[]).filter((k) => withHf || (k !== 'hf' && k !== 'ratioHf'));
}

function tableRows(report: ModelsBenchReport): TableRow[] {
  const rows: TableRow[] = [];
  for (const r of report.rows) {
    for (const [pass, p] of Object.entries(r.passes) as [Pass, NonNullable<(typeof r.passes)[Pass]>][]) {
      rows.push({
        model: r.model,
        shape: `${r.batch_size}×${r.seq_length}`,
        params: millions(r.parameters),
        pass,
        ours: p.ours.seconds.toFixed(3),
        pytorch: fixed(p.pytorch?.seconds, 3),
        ratio: fixed(p.ratio, 2),
        minRatio: fixed(p.min_ratio, 2),
        tokens: p.ours.tokens_per_sec.toFixed(0),
        mfu: `${(p.ours.mfu * 100).toFixed(1)}%`,
        memOurs: mib(p.ours.peak_bytes),
        memPytorch: mib(p.pytorch?.peak_bytes),
        loss: r.loss_difference == null ? '–' : r.loss_difference.toExponential(1),
        hf: fixed(p.hf_bert?.seconds, 3),
        ratioHf: p.hf_bert ? (p.ours.seconds / p.hf_bert.seconds).toFixed(2) : '–',
      });
    }
  }
  return rows;
}

function speedupRows(report: ModelsBenchReport): string[][] {
  return report.speedups.map((s) => [
    s.model,
    PASS_NAMES[s.pass],
    `${s.ours.toFixed(2)}×`,
    s.pytorch == null ? '–' : `${s.pytorch.toFixed(2)}×`,
    `${s.paper.toFixed(2)}×${s.family === 'base' ? '' : ' (base)'}`,
  ]);
}

function align(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, k) => Math.max(...rows.map((r) => r[k]!.length)));
  return rows.map((r) => r.map((cell, k) => cell.padEnd(widths[k]!)).join('  ').trimEnd());
}

function tuningText(report: ModelsBenchReport): string {
  const t = report.runtime_tuning;
  if (!t) return 'n/a';
  if (!t.enabled) return 'off';
  const env = Object.entries(t.environment).map(([k, v]) => `${k}=${v}`);
  return [...env, t.malloc?.applied ? 'malloc keeps freed pages' : 'malloc as configured'].join(', ');
}

function settingsLine(report: ModelsBenchReport): string {
  const peak = report.matmul_peak;
  return (
    `${report.device} (${report.cpu}), ${report.threads} threads, ${report.precision}; libtorch ${report.libtorch}, PyTorch ${report.pytorch ?? 'n/a'} ` +
    `(peer MoE dispatch: ${report.peer_dispatch}; peer runtime: ${report.peer_runtime ?? 'default'}); our runtime tuning: ${tuningText(report)}; matmul ${peak.n}³ peak: ours ${peak.ours_gflops.toFixed(1)}, PyTorch ${fixed(peak.pytorch_gflops, 1)} GFLOP/s`
  );
}

/** The results as aligned plain-text tables. */
export function formatModelsTable(report: ModelsBenchReport): string {
  const keys = columns(report);
  const lines = [settingsLine(report), '', ...align([keys.map((k) => HEADERS[k]), ...tableRows(report).map((r) => keys.map((k) => r[k]))])];
  if (report.speedups.length) {
    lines.push('', 'speed-up over BERT (BERT seconds / model seconds)', ...align([['model', 'pass', 'ours', 'PyTorch', 'paper'], ...speedupRows(report)]));
  }
  for (const t of breakdownTables(report)) lines.push('', `time breakdown: ${t.title}`, ...align(t.rows));
  return lines.join('\n');
}

function markdownTable(rows: string[][]): string {
  const [head, ...body] = rows;
  return [`| ${head!.join(' | ')} |`, `|${head!.map(() => '---').join('|')}|`, ...body.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** A Markdown report: settings, the throughput table, the speed-ups and the chart. */
export function modelsMarkdown(report: ModelsBenchReport, chartFile = 'models.svg'): string {
  const keys = columns(report);
  const parts = [
    '# sparse-mixer bench models',
    '',
    settingsLine(report) + '.',
    '',
    ...(report.command ? ['```', report.command, '```', ''] : []),
    'Seconds per step are medians of interleaved rounds (ours, then PyTorch, in turn). A training step is forward, ' +
      'backward and AdamW on the pre-training model (MLM + NSP + MoE losses, dropout on); inference is an eval-mode ' +
      'encoder forward without gradients. min ratio: ours / PyTorch for the ' +
      'fastest sample of each, which a noisy machine cannot make faster. MFU: analytic model FLOPs per second over the measured matmul peak. ' +
      '|Δloss|: our eval loss minus PyTorch\'s on the same weights and batch. HF BERT: Hugging Face ' +
      'transformers\' BertForPreTraining at the same shapes and precision, timed by the peer (its own weights).',
    '',
    markdownTable([keys.map((k) => HEADERS[k]), ...tableRows(report).map((r) => keys.map((k) => r[k]))]),
    '',
  ];
  if (report.speedups.length) {
    parts.push('## Speed-up over BERT', '', markdownTable([['model', 'pass', 'ours', 'PyTorch', 'paper'], ...speedupRows(report)]), '');
  }
  parts.push(`![throughput, ours vs PyTorch](${chartFile})`, '');
  const tables = breakdownTables(report);
  if (tables.length) {
    parts.push(
      '## Time breakdown',
      '',
      'One profiled pass each (libtorch\'s profiler; the parts are the scopes the models open, backward time ' +
        'goes to the part whose forward created each backward node). GFLOP and MB: the part\'s analytic FLOPs and the ' +
        'bytes it must at least move (a training step counts backward as twice the forward). ours at limit: the time the ' +
        `part would take at the measured matmul peak or copy bandwidth${report.copy_gbps ? ` (${report.copy_gbps.toFixed(1)} GB/s)` : ''}, whichever binds, over its time.`,
      '',
    );
    for (const t of tables) parts.push(`### ${t.title}`, '', markdownTable(t.rows), '');
    parts.push(`![time per part, ours vs PyTorch](${chartFile.replace(/\.svg$/, '')}-breakdown.svg)`, '');
  }
  return parts.join('\n');
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Horizontal bars of tokens/s on a log scale, one panel per pass, ours and PyTorch per model. */
export function modelsSvg(report: ModelsBenchReport): string {
  const passes = (['train', 'infer'] as const).filter((p) => report.rows.some((r) => r.passes[p]));
  const bar = 12;
  const labelWidth = 190;
  const plotWidth = 430;
  const panelGap = 40;
  const colors = { ours: '#3b6fb6', pytorch: '#e0892b', hf: '#5aa25a' };
  const withHf = report.rows.some((r) => Object.values(r.passes).some((p) => p.hf_bert));
  const rowHeight = (withHf ? 3 : 2) * bar + 10;
  const all: number[] = [];
  for (const r of report.rows) {
    for (const p of Object.values(r.passes)) {
      all.push(p.ours.tokens_per_sec);
      if (p.pytorch) all.push(p.pytorch.tokens_per_sec);
      if (p.hf_bert) all.push(p.hf_bert.tokens_per_sec);
    }
  }
  const lo = 10 ** Math.floor(Math.log10(Math.min(...all)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...all)));
  const x = (v: number) => labelWidth + (plotWidth * Math.log10(v / lo)) / Math.log10(hi / lo);
  const out: string[] = [];
  let y = 30;
  for (const pass of passes) {
    out.push(`<text x="10" y="${y}" font-weight="bold">${PASS_NAMES[pass]} (tokens/s, log scale)</text>`);
    y += 12;
    const top = y;
    for (const r of report.rows) {
      const p = r.passes[pass];
      if (!p) continue;
      out.push(`<text x="${labelWidth - 8}" y="${y + bar + 4}" text-anchor="end">${escapeXml(r.model)}</text>`);
      const bars: [keyof typeof colors, Measurement | null | undefined][] = [['ours', p.ours], ['pytorch', p.pytorch], ['hf', p.hf_bert]];
      bars.forEach(([who, m], k) => {
        if (!m) return;
        const yy = y + k * bar;
        out.push(`<rect x="${labelWidth}" y="${yy}" width="${(x(m.tokens_per_sec) - labelWidth).toFixed(1)}" height="${bar - 1}" fill="${colors[who]}"/>`);
        out.push(`<text x="${(x(m.tokens_per_sec) + 4).toFixed(1)}" y="${yy + bar - 2}" font-size="10">${m.tokens_per_sec.toFixed(0)}</text>`);
      });
      y += rowHeight;
    }
    for (let v = lo; v <= hi; v *= 10) {
      out.push(`<line x1="${x(v).toFixed(1)}" y1="${top}" x2="${x(v).toFixed(1)}" y2="${y - 6}" stroke="#ccc" stroke-dasharray="2,2"/>`);
      out.push(`<text x="${x(v).toFixed(1)}" y="${y + 6}" font-size="10" text-anchor="middle">${v >= 1000 ? `${v / 1000}k` : v}</text>`);
    }
    y += panelGap;
  }
  const legend = `<rect x="${labelWidth}" y="8" width="10" height="10" fill="${colors.ours}"/><text x="${labelWidth + 14}" y="17">ours</text>` +
    `<rect x="${labelWidth + 60}" y="8" width="10" height="10" fill="${colors.pytorch}"/><text x="${labelWidth + 74}" y="17">PyTorch eager</text>` +
    (withHf ? `<rect x="${labelWidth + 180}" y="8" width="10" height="10" fill="${colors.hf}"/><text x="${labelWidth + 194}" y="17">HF BERT</text>` : '');
  const width = labelWidth + plotWidth + 70;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    legend,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}
