// Renderings of the time breakdown of `bench models --breakdown`: a table per model and pass (ours
// and PyTorch's milliseconds per part, forward + backward, with the part's analytic cost and how
// close ours runs to the machine's limit), and a stacked-bar SVG of the same.
import { PARTS, type BreakdownRow, type Part } from './breakdown';
import type { ModelsBenchReport, Pass } from './models';

const COLORS: Record<Part, string> = {
  embeddings: '#8c564b',
  mixing: '#17becf',
  attention: '#1f77b4',
  layer_norm: '#c7c7c7',
  feed_forward: '#2ca02c',
  'moe/router': '#ffbb78',
  'moe/routing': '#ff9896',
  'moe/dispatch': '#d62728',
  'moe/exchange': '#f7b6d2',
  'moe/experts': '#ff7f0e',
  'moe/combine': '#9467bd',
  heads: '#bcbd22',
  'gradient accumulation': '#7f7f7f',
  optimizer: '#e377c2',
  other: '#dddddd',
};

const ms = (x: number) => x.toFixed(1);

function find(rows: BreakdownRow[] | null, part: Part): BreakdownRow | undefined {
  return rows?.find((r) => r.part === part);
}

/** One table (rows of cells) per model and pass: part, ours fwd/bwd, PyTorch fwd/bwd, GFLOP, MB, our efficiency. */
export function breakdownTables(report: ModelsBenchReport): { title: string; rows: string[][] }[] {
  const out: { title: string; rows: string[][] }[] = [];
  for (const r of report.rows) {
    for (const [pass, b] of Object.entries(r.breakdown ?? {}) as [Pass, NonNullable<NonNullable<typeof r.breakdown>[Pass]>][]) {
      const head = ['part', 'ours fwd ms', 'ours bwd ms', 'PyTorch fwd ms', 'PyTorch bwd ms', 'GFLOP', 'MB', 'ours at limit'];
      const rows = [head];
      for (const part of PARTS) {
        const o = find(b.ours, part);
        const p = find(b.pytorch, part);
        if (!o && !p) continue;
        rows.push([
          part,
          o ? ms(o.forward_ms) : '–',
          o ? ms(o.backward_ms) : '–',
          p ? ms(p.forward_ms) : '–',
          p ? ms(p.backward_ms) : '–',
          o && o.flops ? (o.flops / 1e9).toFixed(2) : '',
          o && o.bytes ? (o.bytes / 1e6).toFixed(0) : '',
          o?.efficiency != null ? `${(100 * o.efficiency).toFixed(0)}%` : '',
        ]);
      }
      const total = (x: BreakdownRow[] | null) => (x ? ms(x.reduce((s, y) => s + y.forward_ms + y.backward_ms, 0)) : '–');
      rows.push(['total', total(b.ours), '', total(b.pytorch), '', '', '', '']);
      out.push({ title: `${r.model}, ${r.batch_size}×${r.seq_length}, ${pass === 'train' ? 'training step' : 'inference'}`, rows });
    }
  }
  return out;
}

/** Stacked horizontal bars, one pair (ours, PyTorch) per model and pass, milliseconds by part. */
export function breakdownSvg(report: ModelsBenchReport): string {
  const bars: { label: string; rows: BreakdownRow[] }[] = [];
  for (const r of report.rows) {
    for (const [pass, b] of Object.entries(r.breakdown ?? {}) as [Pass, NonNullable<NonNullable<typeof r.breakdown>[Pass]>][]) {
      bars.push({ label: `${r.model} ${pass} ours`, rows: b.ours });
      if (b.pytorch) bars.push({ label: `${r.model} ${pass} PyTorch`, rows: b.pytorch });
    }
  }
  const labelWidth = 260;
  const plotWidth = 520;
  const bar = 16;
  const longest = Math.max(1e-9, ...bars.map((b) => b.rows.reduce((s, x) => s + x.forward_ms + x.backward_ms, 0)));
  const scale = plotWidth / longest;
  const out: string[] = [];
  let y = 40;
  for (const b of bars) {
    out.push(`<text x="${labelWidth - 8}" y="${y + bar - 4}" text-anchor="end">${b.label.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>`);
    let x = labelWidth;
    for (const part of PARTS) {
      const row = b.rows.find((r) => r.part === part);
      if (!row) continue;
      for (const [t, opacity] of [[row.forward_ms, 1], [row.backward_ms, 0.55]] as const) {
        if (t <= 0) continue;
        out.push(`<rect x="${x.toFixed(1)}" y="${y}" width="${(t * scale).toFixed(1)}" height="${bar - 2}" fill="${COLORS[part]}" fill-opacity="${opacity}"><title>${part} ${opacity === 1 ? 'forward' : 'backward'} ${ms(t)} ms</title></rect>`);
        x += t * scale;
      }
    }
    out.push(`<text x="${(x + 4).toFixed(1)}" y="${y + bar - 4}" font-size="10">${ms((x - labelWidth) / scale)} ms</text>`);
    y += bar + 6;
  }
  let lx = 10;
  const legend: string[] = [];
  for (const part of PARTS) {
    legend.push(`<rect x="${lx}" y="8" width="10" height="10" fill="${COLORS[part]}"/><text x="${lx + 13}" y="17" font-size="10">${part}</text>`);
    lx += 13 + part.length * 6 + 12;
  }
  const width = Math.max(labelWidth + plotWidth + 80, lx);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 20}" font-family="sans-serif" font-size="12">`,
    '<rect width="100%" height="100%" fill="white"/>',
    ...legend,
    `<text x="10" y="32" font-size="10">milliseconds per part; solid: forward, light: backward</text>`,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}
