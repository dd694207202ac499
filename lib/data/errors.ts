// Errors about input data say what is wrong and where: file and line.
import { excerpt } from '../util/excerpt';

export class DataError extends Error {
  constructor(
    message: string,
    readonly file?: string,
    readonly line?: number,
  ) {
    // Messages quote data (cells, paths): escaped, so a binary file cannot drive the terminal.
    const where = file === undefined ? '' : `${excerpt(file, 500)}${line === undefined ? '' : `:${line}`}: `;
    super(`${where}${excerpt(message, 1000)}`);
    this.name = 'DataError';
  }
}

/** A bad row that was skipped (with skip_bad_rows), for the end-of-run report. */
export interface SkippedRow {
  file: string;
  line: number;
  reason: string;
}
