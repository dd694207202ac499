// Errors about input data say what is wrong and where: file and line.

export class DataError extends Error {
  constructor(
    message: string,
    readonly file?: string,
    readonly line?: number,
  ) {
    super(file === undefined ? message : `${file}${line === undefined ? '' : `:${line}`}: ${message}`);
    this.name = 'DataError';
  }
}

/** A bad row that was skipped (with skip_bad_rows), for the end-of-run report. */
export interface SkippedRow {
  file: string;
  line: number;
  reason: string;
}
