// Reading request bodies within a limit and writing JSON answers and TEI-shaped errors.
import type { IncomingMessage, ServerResponse } from 'http';
import { HttpError } from './requests';

function tooLarge(bytes: string, limit: number): HttpError {
  // The rest of the body is not read: the connection closes after the answer.
  return new HttpError(413, 'Validation', `the request body is ${bytes} bytes, more than the limit of ${limit} (--max-body-bytes)`, { Connection: 'close' });
}

/** The whole body, or a 413 as soon as it is known to exceed `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(tooLarge(String(declared), limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        done = true;
        req.off('data', onData);
        req.pause();
        reject(tooLarge(`over ${limit}`, limit));
      } else chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => {
      done = true;
      resolve(Buffer.concat(chunks));
    });
    req.on('error', (error) => {
      done = true;
      reject(error);
    });
    req.on('close', () => {
      if (!done) reject(new HttpError(400, 'Validation', 'the client closed the connection before the body was complete'));
    });
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Answers an error in TEI's shape, { error, error_type }; returns the status. */
export function sendError(res: ServerResponse, error: unknown, headers: Record<string, string> = {}): number {
  const e = error instanceof HttpError ? error : new HttpError(500, 'Backend', error instanceof Error ? error.message : String(error));
  if (res.headersSent) {
    res.destroy(); // half an answer is already out: the client sees the connection fail rather than a wrong answer
    return e.status;
  }
  sendJson(res, e.status, { error: e.message, error_type: e.errorType }, { ...headers, ...e.headers });
  return e.status;
}
