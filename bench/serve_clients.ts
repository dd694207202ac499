// Closed-loop HTTP clients for `bench serve`: each of `concurrency` clients sends a request, waits
// for its answer and sends the next, so the server always holds `concurrency` requests. Only what
// happens inside the measured window counts: completions in it, latencies of requests sent and
// answered in it.
import * as http from 'http';

export interface LoadResult {
  /** Requests answered inside the window. */
  completed: number;
  /** Answers other than 200 (any is a failed run). */
  errors: number;
  windowSeconds: number;
  latenciesMs: number[];
}

function post(agent: http.Agent, url: URL, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Runs `concurrency` clients over `bodies` (in turn) for warmupSeconds + seconds; `onWindow` is
 * called when the measured window opens and when it closes (e.g. to read the server's metrics).
 */
export async function closedLoop(
  endpoint: string,
  bodies: readonly string[],
  concurrency: number,
  warmupSeconds: number,
  seconds: number,
  onWindow: (edge: 'open' | 'close') => Promise<void>,
): Promise<LoadResult> {
  const url = new URL(endpoint);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const start = performance.now();
  const open = start + warmupSeconds * 1000;
  const close = open + seconds * 1000;
  let next = 0;
  let completed = 0;
  let errors = 0;
  const latenciesMs: number[] = [];
  const client = async () => {
    while (performance.now() < close) {
      const body = bodies[next++ % bodies.length]!;
      const sent = performance.now();
      const status = await post(agent, url, body);
      const answered = performance.now();
      if (status !== 200) errors++;
      if (answered >= open && answered <= close) completed++;
      if (sent >= open && answered <= close) latenciesMs.push(answered - sent);
    }
  };
  const edges = (async () => {
    await new Promise((r) => setTimeout(r, open - performance.now()));
    await onWindow('open');
    await new Promise((r) => setTimeout(r, close - performance.now()));
    await onWindow('close');
  })();
  await Promise.all([...Array.from({ length: concurrency }, client), edges]);
  agent.destroy();
  return { completed, errors, windowSeconds: seconds, latenciesMs };
}

/** The q-quantile (0..1) by nearest rank. */
export function percentile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}
