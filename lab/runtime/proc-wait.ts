// Waiting on a process the lab started in a host: until its log shows a line, or a check
// holds; failing, with the log's last line, if it exits first or time runs out.
import { readFileSync } from 'node:fs';
import { PointError } from '../../core/errors.js';
import type { Proc } from './runtime.js';

/** The last line of a process's log, or "(no output)". */
function lastLine(proc: Proc): string {
  let text = '';
  try {
    text = readFileSync(proc.log, 'utf8');
  } catch {
    // Not written yet.
  }
  return text.trim().split('\n').filter(Boolean).pop() ?? '(no output)';
}

/** Polls `ready` until it gives a value; fails, with the log's last line, if the process exits first or time runs out. */
export async function waitUntil<T>(
  proc: Proc,
  ready: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  what: string,
  late: string,
  everyMs = 25,
): Promise<T> {
  let exited: number | null | undefined;
  void proc.exited.then((c) => (exited = c));
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = await ready();
    if (got !== undefined) return got;
    if (exited !== undefined || Date.now() > end)
      throw new PointError(`${what} ${exited !== undefined ? `exited (code ${exited})` : late}: ${lastLine(proc)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Waits until the process's log holds a line matching `re`; fails if it exits first. */
export function waitForLine(proc: Proc, re: RegExp, timeoutMs: number, what: string): Promise<string> {
  const line = () => {
    try {
      return readFileSync(proc.log, 'utf8')
        .split('\n')
        .find((l) => re.test(l));
    } catch {
      return undefined; // not written yet
    }
  };
  return waitUntil(proc, line, timeoutMs, what, `not ready after ${timeoutMs / 1000} s`);
}
