// `sparse-mixer serve`: the HTTP inference server, until SIGTERM or SIGINT, which drain it: no new
// requests, the ones in flight answered, then exit 0. Its log lines go to stderr, like every
// command's progress (stdout carries results, and a server has none).
import type { Command } from 'commander';
import { SERVE_DEFAULTS } from '../serve/options';
import { nonNegativeNumber, portNumber, positiveInt } from './args';

interface ServeCliOptions {
  workdir: string;
  host: string;
  port: number;
  maxBatchTokens: number;
  maxBatchRequests: number;
  maxWaitMs: number;
  maxConcurrentRequests: number;
  maxClientBatchSize: number;
  maxBodyBytes: number;
  step?: number;
  device?: string;
}

export function registerServeCommand(program: Command): void {
  const d = SERVE_DEFAULTS;
  program
    .command('serve')
    .description('HTTP inference server with dynamic batching: POST /predict and /embed, GET /health, /info and /metrics')
    .requiredOption('--workdir <dir>', 'a fine-tuned workdir (every endpoint) or a pre-trained one (/embed only)')
    .option('--host <host>', 'address to listen on (0.0.0.0: every interface)', d.host)
    .option('--port <n>', 'port to listen on (0: any free port)', portNumber, d.port)
    .option('--max-batch-tokens <n>', 'padded tokens per batch at most (inputs × width)', positiveInt, d.maxBatchTokens)
    .option('--max-batch-requests <n>', 'inputs per batch at most', positiveInt, d.maxBatchRequests)
    .option('--max-wait-ms <ms>', 'how long an input waits for its batch to fill', nonNegativeNumber, d.maxWaitMs)
    .option('--max-concurrent-requests <n>', 'requests answered at once; beyond, 429 with Retry-After', positiveInt, d.maxConcurrentRequests)
    .option('--max-client-batch-size <n>', 'inputs one request may hold', positiveInt, d.maxClientBatchSize)
    .option('--max-body-bytes <n>', 'request body size limit; beyond, 413', positiveInt, d.maxBodyBytes)
    .option('--step <n>', 'checkpoint step (default: the latest)', positiveInt)
    .option('--device <device>', 'cpu, cuda or cuda:N (default: cpu)')
    .addHelpText(
      'after',
      '\nExample:\n  $ sparse-mixer serve --workdir runs/spam --port 3000\n' +
        '  $ curl -s localhost:3000/predict -H \'Content-Type: application/json\' -d \'{"inputs": "WIN A FREE CRUISE, reply now"}\'',
    )
    .action(async (opts: ServeCliOptions) => {
      const { serve } = await import('../serve');
      const log = (line: string) => console.error(line);
      const server = await serve({ ...opts, log });
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) {
          console.error(`${signal} again: exiting without waiting for the requests in flight`);
          process.exit(1);
        }
        stopping = true;
        log(`${signal}: taking no new requests, answering the ones in flight`);
        server.close().then(
          () => {
            log('stopped');
            process.exit(0);
          },
          (error: unknown) => {
            console.error(`sparse-mixer serve: ${error instanceof Error ? error.message : String(error)}`);
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
