// Peak resident memory of this process on Linux: VmHWM, which writing 5 to /proc/self/clear_refs
// resets to the current resident size, so a measurement covers just the work timed after it.
import * as fs from 'fs';

/** Starts a new peak; false where the kernel does not allow it (not Linux, or restricted). */
export function resetPeakRss(): boolean {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** Bytes of the peak resident set since the last reset (or process start); null off Linux. */
export function readPeakRss(): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}
