// Vitest's global set-up: every folder a suite makes with mkdtemp(tmpdir()) lands in one
// folder of this run, removed when the run ends, however its tests ended. The suites' own
// folders then need no clean-up of their own, and a run leaves nothing in /tmp.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'tcplab-tests-'));
  // Sticky and open to all, as /tmp is: the rootless suite's user makes folders here too.
  chmodSync(dir, 0o1777);
  // The test files run in child processes started after this, with this environment.
  process.env.TMPDIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
