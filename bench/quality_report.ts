// What `bench quality` reports from its finished runs: mean ± std over seeds per model and task,
// each model against the baseline (the first model), the sweeps' choices, as a text table, a
// Markdown section and an SVG of the MLM training loss against training time.
import * as sm from '../lib';
import type { QualityBenchReport, QualitySettings } from './quality';
import { compareSeeds, summarize, type SeedComparison, type SeedSummary } from './quality_stats';
import type { FinetuneRecord, PretrainRecord, UnitRecord } from './quality_units';

export interface ModelSummary {
  model: string;
  encoder_parameters: number;
  flops_per_token: number;
  pretrain_learning_rate: number | null;
  /** Over the seeds pre-trained at the chosen rate (null until one has finished). */
  steps: SeedSummary | null;
  mlm_loss: SeedSummary | null;
  mlm_accuracy: SeedSummary | null;
  /** By task: the chosen fine-tuning rate, and each metric of the reported split over seeds. */
  tasks: Record<string, { learning_rate: number | null; metrics: Record<string, SeedSummary> }>;
}

export interface QualityComparison extends SeedComparison {
  model: string;
  baseline: string;
  /** A fine-tuning task and one of its metrics, or null and 'held-out MLM loss'. */
  task: string | null;
  metric: string;
  higher_is_better: boolean;
}

export interface QualitySummary {
  models: ModelSummary[];
  comparisons: QualityComparison[];
}

type Chosen = QualityBenchReport['chosen'];

const summaryOf = (values: (number | null)[]): SeedSummary | null => {
  const known = values.filter((v): v is number => v !== null);
  return known.length ? summarize(known) : null;
};

function pretrainRuns(units: Record<string, UnitRecord>, model: string, lr: number | undefined): PretrainRecord[] {
  return Object.values(units).filter((u): u is PretrainRecord => u.kind === 'pretrain' && u.model === model && u.learning_rate === lr && !u.diverged);
}

function finalRuns(units: Record<string, UnitRecord>, model: string, task: string): FinetuneRecord[] {
  return Object.values(units).filter((u): u is FinetuneRecord => u.kind === 'finetune' && u.purpose === 'final' && u.model === model && u.task === task && !u.diverged);
}

export function summarizeQuality(s: QualitySettings, units: Record<string, UnitRecord>, chosen: Chosen, info: Record<string, { encoder_parameters: number; flops_per_token: number }>): QualitySummary {
  const models = s.models.map((model): ModelSummary => {
    const runs = pretrainRuns(units, model, chosen.pretrain[model]);
    const tasks: ModelSummary['tasks'] = {};
    for (const task of s.tasks) {
      const finals = finalRuns(units, model, task);
      const metrics: Record<string, SeedSummary> = {};
      for (const metric of sm.data.tasks.getTask(task).metrics) {
        const m = summaryOf(finals.map((r) => r.metrics[metric] ?? null));
        if (m) metrics[metric] = m;
      }
      tasks[task] = { learning_rate: chosen.finetune[model]?.[task] ?? null, metrics };
    }
    return {
      model,
      encoder_parameters: info[model]?.encoder_parameters ?? 0,
      flops_per_token: info[model]?.flops_per_token ?? 0,
      pretrain_learning_rate: chosen.pretrain[model] ?? null,
      steps: summaryOf(runs.map((r) => r.steps)),
      mlm_loss: summaryOf(runs.map((r) => r.heldout.mlm_loss)),
      mlm_accuracy: summaryOf(runs.map((r) => r.heldout.mlm_accuracy)),
      tasks,
    };
  });
  const [baseline, ...others] = models;
  const comparisons: QualityComparison[] = [];
  const compare = (model: ModelSummary, task: string | null, metric: string, higher: boolean, a: SeedSummary | null | undefined, b: SeedSummary | null | undefined) => {
    if (a && b) comparisons.push({ model: model.model, baseline: baseline!.model, task, metric, higher_is_better: higher, ...compareSeeds(a.values, b.values) });
  };
  for (const m of others) {
    compare(m, null, 'held-out MLM loss', false, baseline!.mlm_loss, m.mlm_loss);
    for (const task of s.tasks) {
      for (const metric of sm.data.tasks.getTask(task).metrics) compare(m, task, metric, true, baseline!.tasks[task]?.metrics[metric], m.tasks[task]?.metrics[metric]);
    }
  }
  return { models, comparisons };
}

const millions = (n: number) => `${(n / 1e6).toFixed(2)}M`;
const taskLabel = (task: string) => sm.data.tasks.getTask(task).folderName?.split('/').pop() ?? task;
function meanStd(x: SeedSummary | null | undefined, digits: number, seeds: number): string {
  if (!x) return '-';
  const core = x.std === null ? x.mean.toFixed(digits) : `${x.mean.toFixed(digits)} ± ${x.std.toFixed(digits)}`;
  return x.n < seeds ? `${core} (n=${x.n})` : core;
}

function mainRows(report: QualityBenchReport): string[][] {
  const s = report.settings;
  const metrics = s.tasks.flatMap((task) => sm.data.tasks.getTask(task).metrics.map((metric) => [task, metric] as const));
  const header = ['model', 'encoder params', 'FLOPs/token', 'pre-train lr', `steps in ${s.budget_seconds}s`, 'held-out MLM loss', 'MLM acc', ...metrics.map(([t, m]) => `${taskLabel(t)} ${m}`)];
  const rows = report.summary.models.map((m) => [
    m.model,
    millions(m.encoder_parameters),
    millions(m.flops_per_token),
    m.pretrain_learning_rate === null ? '-' : String(m.pretrain_learning_rate),
    meanStd(m.steps, 0, s.seeds),
    meanStd(m.mlm_loss, 3, s.seeds),
    meanStd(m.mlm_accuracy, 3, s.seeds),
    ...metrics.map(([t, metric]) => meanStd(m.tasks[t]?.metrics[metric], 3, s.seeds)),
  ]);
  return [header, ...rows];
}

function comparisonRows(report: QualityBenchReport): string[][] {
  const header = ['quantity', 'difference', "seeds' spread (std + std)", 'larger than the spread', 'Welch t (df)', 'p'];
  const rows = report.summary.comparisons.map((c) => {
    const name = c.task === null ? c.metric : `${taskLabel(c.task)} ${c.metric}`;
    const better = c.difference === 0 ? '' : (c.difference > 0) === c.higher_is_better ? ' (better)' : ' (worse)';
    return [
      `${name}: ${c.model} − ${c.baseline}`,
      `${c.difference >= 0 ? '+' : ''}${c.difference.toFixed(3)}${better}`,
      c.spread.toFixed(3),
      c.exceeds_spread ? '**yes**' : 'no',
      c.welch_t === null ? '-' : `${c.welch_t.toFixed(2)} (${c.welch_df!.toFixed(1)})`,
      c.p_value === null ? '-' : c.p_value.toFixed(3),
    ];
  });
  return [header, ...rows];
}

function sweepRows(report: QualityBenchReport): string[][] {
  const s = report.settings;
  const header = ['model', 'pre-training lr: held-out MLM loss', ...s.tasks.map((t) => `${taskLabel(t)} lr: held-out ${sm.data.tasks.getTask(t).metrics[0]}`)];
  const cell = (lr: number, value: string, chosen: boolean) => (chosen ? `**${lr}: ${value}**` : `${lr}: ${value}`);
  const rows = s.models.map((model) => {
    const pre = s.pretrain.learning_rates.map((lr) => {
      const r = report.units[`pretrain ${model} lr=${lr} seed=0`] as PretrainRecord | undefined;
      return r ? cell(lr, r.diverged ? 'diverged' : (r.heldout.mlm_loss?.toFixed(3) ?? '-'), report.chosen.pretrain[model] === lr) : `${lr}: -`;
    });
    const fine = s.tasks.map((task) => {
      const metric = sm.data.tasks.getTask(task).metrics[0]!;
      return s.finetune.learning_rates
        .map((lr) => {
          const r = report.units[`sweep ${model} ${task} lr=${lr}`] as FinetuneRecord | undefined;
          return r ? cell(lr, r.diverged ? 'diverged' : (r.metrics[metric]?.toFixed(3) ?? '-'), report.chosen.finetune[model]?.[task] === lr) : `${lr}: -`;
        })
        .join(', ');
    });
    return [model, pre.join(', '), ...fine];
  });
  return [header, ...rows];
}

function aligned(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd());
}

function markdownTable(rows: string[][]): string[] {
  const [header, ...body] = rows;
  return [`| ${header!.join(' | ')} |`, `|${header!.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...body.map((r) => `| ${r.join(' | ')} |`)];
}

function settingsLine(s: QualitySettings): string {
  const pairs = (o: Record<string, unknown>) => Object.entries(o).map(([k, v]) => `${k}=${String(v)}`).join(' ');
  const perModel = Object.entries(s.model_overrides).filter(([, o]) => Object.keys(o).length);
  const overrides = (Object.keys(s.overrides).length ? `; overrides ${pairs(s.overrides)}` : '') + perModel.map(([m, o]) => `; ${m}: ${pairs(o)}`).join('');
  const rows = s.tasks.map((t) => `${taskLabel(t)} ${s.task_rows[t]!.train} train (${s.task_rows[t]!.held_out} held out in the sweep), ${s.task_rows[t]!.eval} ${s.task_rows[t]!.eval_split}`).join('; ');
  return (
    `${s.seeds} seeds; pre-training ${s.budget_seconds}s of training per run on ${s.corpus}, batch ${s.pretrain.batch_size} × L ${s.pretrain.max_seq_length}, ` +
    `rates [${s.pretrain.learning_rates.join(', ')}] constant after ${s.pretrain.warmup_steps} warmup steps, ${s.vocab_size}-piece vocabulary; ` +
    `fine-tuning ${s.finetune.steps} steps at batch ${s.finetune.batch_size}, rates [${s.finetune.learning_rates.join(', ')}]; ${rows}; ${s.device}, ${s.threads} threads${overrides}`
  );
}

/** The summary as aligned text tables (results, then differences), with a line of settings. */
export function formatQualityTable(report: QualityBenchReport): string {
  const p = report.progress;
  return [
    ...aligned(mainRows(report)),
    '',
    ...aligned(comparisonRows(report)).map((l) => l.replace(/\*\*/g, '')),
    '',
    `${p.complete ? '' : `partial: ${p.done} of ${p.total} runs; `}${settingsLine(report.settings)}`,
  ].join('\n');
}

/** The report as a Markdown section (method, results, differences, sweeps, curves), e.g. for the README. */
export function qualityMarkdown(report: QualityBenchReport, chartFile = 'quality.svg'): string {
  const s = report.settings;
  const p = report.progress;
  const heldOut = s.tasks.map((t) => `${s.task_rows[t]!.held_out} for ${taskLabel(t)}`).join(', ');
  return [
    `### Quality at equal pre-training time (${s.models.join(' vs ')})`,
    '',
    ...(p.complete ? [] : [`**Partial: ${p.done} of ${p.total} runs done.**`, '']),
    `Every pre-training run had the same ${s.budget_seconds}s of training (steps and data waits; evaluations excluded) on ${s.corpus}, ` +
      `with one ${s.vocab_size}-piece vocabulary. Pre-training rates [${s.pretrain.learning_rates.join(', ')}] were tried at seed 0 and the one ` +
      `with the lowest MLM loss on the corpus's held-out split kept for the other seeds. Fine-tuning rates [${s.finetune.learning_rates.join(', ')}] ` +
      `were tried per task from the seed-0 encoder and chosen on rows held out of the task's training split (${heldOut}); the ` +
      `reported split chooses nothing. Then each seed's encoder was fine-tuned at the chosen rate on the whole training split ` +
      `(${s.finetune.steps} steps, the same for every model) and evaluated on the reported split. Values are mean ± sample standard ` +
      `deviation over ${s.seeds} seeds; a difference is "larger than the spread" when it exceeds the sum of the two standard ` +
      `deviations (the mean ± std intervals do not overlap); p is Welch's two-sided t-test.`,
    '',
    ...markdownTable(mainRows(report)),
    '',
    ...markdownTable(comparisonRows(report)),
    '',
    'Learning-rate sweeps at seed 0 (chosen in bold):',
    '',
    ...markdownTable(sweepRows(report)),
    '',
    `![masked-LM training loss against training time](${chartFile})`,
    '',
    `Settings: ${settingsLine(s)}.`,
    '',
  ].join('\n');
}

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** About n round tick values covering [lo, hi]. */
function ticks(lo: number, hi: number, n: number): number[] {
  const raw = (hi - lo) / n || 1;
  const step = [1, 2, 5, 10].map((m) => m * 10 ** Math.floor(Math.log10(raw))).find((v) => v >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** The MLM training loss against seconds of training, one line per seed of each model's chosen rate. */
export function qualitySvg(report: QualityBenchReport): string {
  const colors = ['#3b6fb6', '#e0892b', '#5aa25a', '#b64b8f', '#7a5a3a'];
  const [W, H, left, right, top, bottom] = [640, 380, 60, 20, 40, 45];
  const lines = report.settings.models.flatMap((model, k) =>
    pretrainRuns(report.units, model, report.chosen.pretrain[model]).map((r) => ({ model, color: colors[k % colors.length]!, seed: r.seed, points: r.curve })),
  );
  const all = lines.flatMap((l) => l.points);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    '<rect width="100%" height="100%" fill="white"/>',
    `<text x="${left}" y="18" font-weight="bold">masked-LM training loss against seconds of training (one line per seed)</text>`,
  ];
  if (all.length === 0) {
    out.push(`<text x="${left}" y="${H / 2}">no pre-training at a chosen learning rate has finished yet</text>`, '</svg>', '');
    return out.join('\n');
  }
  const xMax = Math.max(report.settings.budget_seconds, ...all.map(([t]) => t));
  const yLo = Math.min(...all.map(([, v]) => v));
  const yHi = Math.max(...all.map(([, v]) => v));
  const pad = (yHi - yLo) * 0.05 || 0.5;
  const [y0, y1] = [yLo - pad, yHi + pad];
  const x = (t: number) => left + ((W - left - right) * t) / xMax;
  const y = (v: number) => top + ((H - top - bottom) * (y1 - v)) / (y1 - y0);
  for (const t of ticks(0, xMax, 6)) {
    out.push(`<line x1="${x(t).toFixed(1)}" y1="${top}" x2="${x(t).toFixed(1)}" y2="${H - bottom}" stroke="#ddd"/>`);
    out.push(`<text x="${x(t).toFixed(1)}" y="${H - bottom + 15}" text-anchor="middle" font-size="10">${t}</text>`);
  }
  for (const v of ticks(y0, y1, 5)) {
    out.push(`<line x1="${left}" y1="${y(v).toFixed(1)}" x2="${W - right}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="10">${v}</text>`);
  }
  out.push(`<text x="${(left + W - right) / 2}" y="${H - 8}" text-anchor="middle">seconds of training</text>`);
  for (const l of lines) {
    const pts = l.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    out.push(`<polyline fill="none" stroke="${l.color}" stroke-width="1.5" points="${pts}"><title>${escapeXml(`${l.model} seed ${l.seed}`)}</title></polyline>`);
  }
  report.settings.models.forEach((model, k) => {
    const lx = W - right - 230;
    const ly = top + 10 + 16 * k;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 20}" y2="${ly}" stroke="${colors[k % colors.length]}" stroke-width="2"/>`);
    out.push(`<text x="${lx + 26}" y="${ly + 4}">${escapeXml(`${model} (lr ${report.chosen.pretrain[model] ?? '-'})`)}</text>`);
  });
  out.push('</svg>', '');
  return out.join('\n');
}
