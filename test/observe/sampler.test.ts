// The sampler on real namespaces: /proc/net counters read the way nstat reads them, and
// the probe's time series of a paused listener (Recv-Q up to limit + 1, clients left in SYN-SENT).
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseNstat, parseProcNet, WATCHED } from '../../lab/observe/nstat.js';
import { parseSamples, startSampler, summarize, type Sample } from '../../lab/observe/sampler.js';
import { sockstatTimeWait } from '../../lab/in-host/sampler-probe.js';
import { countStates, parseSockets, type TcpState } from '../../lab/observe/ss.js';
import { NetnsRuntime } from '../../lab/runtime/netns.js';
import { waitForLine } from '../../lab/runtime/proc-wait.js';
import { control } from '../../lab/pipeline/server-host.js';
import { createNetns } from '../helpers/netns.js';

const HOLD = fileURLToPath(new URL('../helpers/hold-connections.mjs', import.meta.url));
const ONCE = fileURLToPath(new URL('../helpers/probe-once.mjs', import.meta.url));

describe('counters from /proc/net', () => {
  it('equal what nstat prints, under the same names, in an idle namespace', () => {
    const ns = createNetns('procnet');
    try {
      const proc = parseProcNet(ns.exec(['cat', '/proc/net/netstat']), ns.exec(['cat', '/proc/net/snmp']));
      const nstat = parseNstat(ns.exec(['nstat', '-asz']));
      const common = Object.keys(proc).filter((k) => k in nstat);
      expect(common.length).toBeGreaterThan(100);
      for (const k of WATCHED) expect(common).toContain(k);
      for (const k of common) expect([k, proc[k]]).toEqual([k, nstat[k]]);
    } finally {
      ns.remove();
    }
  });

  it('rejects a header without its value line', () => {
    expect(() => parseProcNet('TcpExt: A B\nIpExt: 1 2\n')).toThrow('unrecognized /proc/net line pair: TcpExt: A B');
  });
});

describe('sampler', () => {
  it('parses the probe lines and skips others', () => {
    const s = parseSamples(
      'probe: oops\n{"t":2,"listeners":[],"states":{"ESTAB":1},"full":true,"counters":{}}\n{"t":1,"listeners":[{"port":80,"recvQ":3,"sendQ":5}],"states":{"ESTAB":4},"full":false,"counters":{}}\n{"t":3,"lis',
    );
    expect(s.map((x) => x.t)).toEqual([1, 2]);
    expect(summarize(s, 80)).toEqual({
      samples: 2,
      intervalMs: 1,
      listener: { port: 80, sendQ: 5, peakRecvQ: 3, peakHeldMs: 0 },
      peakStates: { ESTAB: 4 },
    });
  });

  it('how long the deepest queue held: the longest run of samples at it, a dip between runs included', () => {
    const at = (t: number, recvQ: number) => ({ t, listeners: [{ port: 80, recvQ, sendQ: 8 }], states: {}, full: false, counters: {} });
    // 3 → 9 (t 20) → 9 (t 70) → 4 → 9 (t 150 … 300) → 2: the second run at 9 held 150 ms.
    const s = [at(0, 3), at(20, 9), at(70, 9), at(100, 4), at(150, 9), at(200, 9), at(300, 9), at(350, 2)];
    expect(summarize(s, 80).listener).toEqual({ port: 80, sendQ: 8, peakRecvQ: 9, peakHeldMs: 150 });
    // Seen in one sample only: held 0.
    expect(summarize([at(0, 1), at(50, 7), at(100, 1)], 80).listener!.peakHeldMs).toBe(0);
  });

  it('a paused server with backlog 4 and 12 clients: Send-Q 4, peak Recv-Q 5, the rest in SYN-SENT', async () => {
    const rt = new NetnsRuntime();
    const runId = `t${process.pid}-sampler`;
    const lab = await rt.create({
      runId,
      subnet: '198.18.0.0/24',
      logDir: mkdtempSync(join(tmpdir(), 'tcplab-sampler-')),
      hosts: [{ name: 'server', role: 'server', sysctls: [] }],
    });
    try {
      const h = lab.host('server');
      const srv = h.start([...h.node('dist/server/main.js'), '--port', '8080', '--control-port', '9090', '--backlog', '4'], 'server');
      await waitForLine(srv, /"event":"listening"/, 10_000, 'server');
      await control(h, 9090, '/pause', 'POST');
      // A port nothing listens on: the call fails with one line naming it.
      await expect(control(h, 9091, '/stats')).rejects.toThrow(
        /^server: GET \/stats failed: connection refused on 127\.0\.0\.1:9091 \(ECONNREFUSED\)$/,
      );
      const sampler = startSampler(h, 20);
      const holding = h.start([process.execPath, HOLD, '127.0.0.1', '8080', '12', '1500'], 'hold');
      await new Promise((r) => setTimeout(r, 700));
      // Mid-hold, the sampler's two ways of reading sockets agree with ss.
      const ss = (await h.exec(['ss', '-tanH'])).stdout;
      const want = countStates(parseSockets(ss));
      for (const mode of ['diag', 'proc']) {
        const one = JSON.parse((await h.exec([process.execPath, ONCE, mode])).stdout) as Sample;
        expect([mode, one.full]).toEqual([mode, true]);
        for (const st of ['ESTAB', 'SYN-SENT', 'LISTEN', 'TIME-WAIT']) expect([mode, st, one.states[st]]).toEqual([mode, st, want[st as TcpState]]);
        const l = one.listeners.find((x) => x.port === 8080)!;
        expect([mode, l.recvQ]).toEqual([mode, 5]);
        expect([mode, l.sendQ]).toEqual([mode, mode === 'diag' ? 4 : -1]); // /proc/net/tcp does not show the limit
      }
      await holding.exited;
      const samples = await sampler.stop();
      expect(readFileSync(holding.log, 'utf8').trim()).toBe('5'); // limit + 1 handshakes completed
      const sum = summarize(samples, 8080);
      expect(sum.samples).toBeGreaterThan(20);
      expect(sum.intervalMs).toBeLessThan(60);
      expect(sum.listener).toMatchObject({ port: 8080, sendQ: 4, peakRecvQ: 5 });
      // The paused server's queue stays full: the peak held through most of the series.
      expect(sum.listener!.peakHeldMs).toBeGreaterThan(500);
      expect(sum.peakStates['SYN-SENT']).toBe(7);
      // The counters move during the series: the dropped SYNs show as ListenDrops.
      const drops = samples.map((s) => s.counters['TcpExtListenDrops']!);
      expect(drops[drops.length - 1]! - drops[0]!).toBeGreaterThanOrEqual(7);
      // Samples are in time order, about 20 ms apart.
      expect(samples.every((s, i) => i === 0 || s.t >= samples[i - 1]!.t)).toBe(true);
      // Full dumps every ~500 ms, not every sample.
      const fulls = samples.filter((s) => s.full).length;
      expect(fulls).toBeGreaterThanOrEqual(3);
      expect(fulls).toBeLessThan(samples.length / 5);

      // TIME-WAIT from /proc/net/sockstat (every sample) = what ss counts: ab's HTTP/1.0
      // requests are closed by the server first, so they end in TIME-WAIT here.
      await control(h, 9090, '/resume', 'POST');
      const ab = await h.exec(['ab', '-q', '-c', '4', '-n', '300', 'http://127.0.0.1:8080/']);
      expect(ab.exitCode, ab.stderr).toBe(0);
      const tw = sockstatTimeWait((await h.exec(['cat', '/proc/net/sockstat'])).stdout);
      expect(tw).toBeGreaterThanOrEqual(300);
      expect(tw).toBe(countStates(parseSockets((await h.exec(['ss', '-tanH'])).stdout))['TIME-WAIT']);
    } finally {
      await lab.destroy();
    }
  });
});
