// Statistics over seeds for `bench quality`: mean ± sample standard deviation, and whether two
// models differ by more than their seeds' spread (plainly, and by Welch's t-test, which does not
// assume equal variances: a MoE model's seeds may well spread more than BERT's).

export interface SeedSummary {
  n: number;
  mean: number;
  /** Sample standard deviation (n − 1); null for a single value. */
  std: number | null;
  values: number[];
}

export interface SeedComparison {
  /** mean(b) − mean(a). */
  difference: number;
  /** std(a) + std(b): the two mean ± std intervals overlap unless |difference| exceeds it. */
  spread: number;
  /** |difference| > spread: the intervals do not overlap. */
  exceeds_spread: boolean;
  /** Welch's t statistic, its degrees of freedom and the two-sided p-value; null when either side has fewer than 2 values or neither varies. */
  welch_t: number | null;
  welch_df: number | null;
  p_value: number | null;
}

export function summarize(values: readonly number[]): SeedSummary {
  if (values.length === 0) throw new RangeError('summarize: no values');
  const n = values.length;
  const mean = values.reduce((s, v) => s + v, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1)) : null;
  return { n, mean, std, values: [...values] };
}

export function compareSeeds(a: readonly number[], b: readonly number[]): SeedComparison {
  const sa = summarize(a);
  const sb = summarize(b);
  const difference = sb.mean - sa.mean;
  const spread = (sa.std ?? 0) + (sb.std ?? 0);
  const out: SeedComparison = { difference, spread, exceeds_spread: Math.abs(difference) > spread, welch_t: null, welch_df: null, p_value: null };
  if (sa.std === null || sb.std === null) return out;
  const va = sa.std ** 2 / sa.n;
  const vb = sb.std ** 2 / sb.n;
  if (va + vb === 0) return out;
  const t = difference / Math.sqrt(va + vb);
  const df = (va + vb) ** 2 / (va ** 2 / (sa.n - 1) + vb ** 2 / (sb.n - 1));
  return { ...out, welch_t: t, welch_df: df, p_value: studentTwoSidedP(t, df) };
}

/** P(|T| ≥ |t|) for Student's t with df degrees of freedom (df need not be an integer). */
export function studentTwoSidedP(t: number, df: number): number {
  return regularizedBeta(df / (df + t * t), df / 2, 0.5);
}

/** ln Γ(x) by Lanczos' approximation (g = 7, 9 terms; ~15 significant digits). */
function logGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let sum = c[0]!;
  for (let i = 1; i < c.length; i++) sum += c[i]! / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** I_x(a, b), the regularized incomplete beta function, by its continued fraction (Numerical Recipes' betacf). */
function regularizedBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  // The fraction converges fast only on this side of the mean; the other side by symmetry.
  return x < (a + 1) / (a + b + 2) ? (front * betaFraction(x, a, b)) / a : 1 - (front * betaFraction(1 - x, b, a)) / b;
}

function betaFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  const guard = (v: number) => (Math.abs(v) < tiny ? tiny : v);
  let c = 1;
  let d = 1 / guard(1 - ((a + b) * x) / (a + 1));
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const even = (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m));
    d = 1 / guard(1 + even * d);
    c = guard(1 + even / c);
    h *= d * c;
    const odd = (-(a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 / guard(1 + odd * d);
    c = guard(1 + odd / c);
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return h;
}
