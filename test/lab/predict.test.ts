// `lab predict FILE` as a user without root runs it: every example, every point, and the
// numbers the model gives for them; bad input is one line, exit 2.
import { describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { PointPrediction } from '../../lab/plan/predict.js';

const CLI = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));
const asNobody = (args: string[]) =>
  execa('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, CLI, ...args], { reject: false, cwd: EXAMPLES });

describe('lab predict', () => {
  it.each(readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml')))('%s: every point, as a user without root', async (f) => {
    const r = await asNobody(['predict', f]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const j = await asNobody(['predict', f, '--json']);
    const points = JSON.parse(j.stdout) as PointPrediction[];
    expect(points.length).toBeGreaterThan(0);
    for (const p of points) {
      expect(r.stdout).toContain(`\n${p.id} `);
      expect(p.predictions.length).toBeGreaterThan(0);
      // The examples stay inside the model.
      expect(p.notModelled).toEqual([]);
    }
  });

  it("a server of the user's own: the backlog it passes to listen() is named as not known before it runs; the lab's own servers have nothing unknown", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcplab-predict-own-'));
    chmodSync(dir, 0o755); // read by the user without root
    const f = join(dir, 'own.yaml');
    writeFileSync(
      f,
      "scenario: {name: backlog}\nserver: {kind: command, command: [python3, -m, http.server, '{port}'], backlog: 16}\nsweep: {matrix: {server.kind: [command, tcplab, nginx]}}\n",
    );
    const r = await asNobody(['predict', f]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      "  not known before it runs: the backlog the command python3 passes to listen(): these numbers assume server.backlog 16; the point reads the real one (ss Send-Q) and judges the kernel's rules against it",
    );
    const points = JSON.parse((await asNobody(['predict', f, '--json'])).stdout) as PointPrediction[];
    expect(points.map((p) => p.unknown.length)).toEqual([1, 0, 0]);
  });

  it('the numbers: backlog limits, the synflood caps, the overflow timeline, the timewait rounds', async () => {
    const json = async (f: string) => JSON.parse((await asNobody(['predict', f, '--json'])).stdout) as PointPrediction[];
    const value = (p: PointPrediction, what: string) => p.predictions.find((x) => x.what.startsWith(what))?.value;
    expect((await json('backlog.yaml')).map((p) => value(p, 'accept queue limit'))).toEqual([16, 16, 64, 128]);
    const flood = await json('synflood.yaml');
    expect(value(flood[0]!, 'SYN-RECV')).toBe(49); // cookies 0, M 64: 64 − 16 + 1
    expect(value(flood[1]!, 'SYN-RECV')).toBe(129); // cookies 0, M 4096: L + 1
    const tw = await json('timewait.yaml');
    expect(value(tw[1]!, 'connections made')).toBe('200–400'); // reuse 1: 100 ports × 3 rounds, a round either way
  });

  it('a setting outside the model is named before anything runs', async () => {
    const f = join(mkdtempSync(join(tmpdir(), 'tcplab-predict-')), 'flood.yaml');
    writeFileSync(f, 'scenario: {name: synflood}\nserver: {sysctls: {net.ipv4.tcp_synack_retries: 2}}\n');
    const r = await execa(process.execPath, [CLI, 'predict', f], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('not modelled: server net.ipv4.tcp_synack_retries=2: its verdicts will be INCONCLUSIVE, not FAIL');
  });
});
