// `lab down RUN_ID` for the labs a test made, found with `lab status --json`: never a bare
// `lab down`, which would remove every lab on the machine, those of suites running meanwhile.
import { expect } from 'vitest';
import { execa, type Options } from 'execa';

export interface LabStatus {
  runId: string;
  runtime: string;
  hosts: Array<{ name: string; pids: number[] }>;
}

/**
 * Removes each lab `pick` chooses, one `lab down RUN_ID` each, and asserts that each exits 0;
 * with `some`, also that there was one (a SIGKILL between two points may leave none).
 */
export async function downLabs(cli: string, pick: (l: LabStatus) => boolean, opts: Options = {}, some = true): Promise<string> {
  const st = await execa(process.execPath, [cli, 'status', '--json'], { ...opts, reject: false });
  expect(st.exitCode, String(st.stderr)).toBe(0);
  const labs = (JSON.parse(String(st.stdout)) as LabStatus[]).filter(pick);
  if (some) expect(labs.length, 'no lab of this test to remove').toBeGreaterThan(0);
  let stderr = '';
  for (const l of labs) {
    const d = await execa(process.execPath, [cli, 'down', l.runId], { ...opts, reject: false });
    expect(d.exitCode, String(d.stderr)).toBe(0);
    stderr += String(d.stderr);
  }
  return stderr;
}
