// File-system helpers whose errors say what really failed.
import * as fs from 'fs';
import * as path from 'path';

/**
 * mkdir -p. Node's recursive mkdir reports ENOENT when the real cause is a read-only file system
 * or a missing permission; on failure this finds the first folder that cannot be made and rethrows
 * that folder's own error (EROFS, EACCES, ENOTDIR), naming it.
 */
export function makeDirs(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const missing: string[] = [];
  let at = path.resolve(dir);
  while (!fs.existsSync(at) && path.dirname(at) !== at) {
    missing.unshift(at);
    at = path.dirname(at);
  }
  for (const d of missing) fs.mkdirSync(d); // throws the real error, naming the folder
}
