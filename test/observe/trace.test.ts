// The tracer and the capture. Parsers on the real tools' output: a bpftrace run's lines and a
// pcap read by the real tshark (both from an overflow point, abort_on_overflow=1, on netns).
// Then the real thing on the netns and Docker runtimes: `lab run --scenario overflow --trace
// --capture` with abort_on_overflow 0 and 1; the events are attributed to the right host, their
// counts agree with the kernel's counters, and each handshake in the capture agrees with the
// client's own outcome.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { expectAllPass } from '../helpers/verdicts.js';
import puppeteer from 'puppeteer-core';
import { parseTshark, tsharkArgv } from '../../lab/observe/capture.js';
import {
  bpftraceScript,
  countEvents,
  kernelReasons,
  parseTrace,
  symbolicNames,
  tcpFlags,
  tracerUnavailable,
  type TraceEvent,
} from '../../lab/observe/tracer.js';
import type { PointRecord } from '../../lab/pipeline/record.js';
import { RESERVED_PORTS } from '../../core/fields.js';
import { DockerRuntime } from '../../lab/runtime/docker.js';
import { NetnsRuntime } from '../../lab/runtime/netns.js';

const FIX = fileURLToPath(new URL('../fixtures/trace/', import.meta.url));
const CLI = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
const HELD = RESERVED_PORTS.overflow.first;
const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium';

describe('tracer: parsing and the script', () => {
  it("reads this kernel's drop and RST reasons from the tracepoints' formats", () => {
    const r = kernelReasons();
    expect([...r.drop.values()]).toContain('TCP_LISTEN_OVERFLOW');
    expect([...r.drop.values()]).toContain('NETFILTER_DROP');
    expect([...r.reset.values()]).toContain('NO_SOCKET');
    expect(symbolicNames('x __print_symbolic(REC->reason, { 2, "A_B" }, { 7, "C" }), __print_symbolic(REC->other, { 1, "D" })', 'reason')).toEqual(
      new Map([
        [2, 'A_B'],
        [7, 'C'],
      ]),
    );
  });

  it('says in one line why it cannot run: no root, or no bpftrace on the PATH', async () => {
    const path = process.env['PATH'];
    process.env['PATH'] = '/nonexistent';
    try {
      expect(await tracerUnavailable()).toBe(
        process.getuid?.() === 0
          ? 'bpftrace is missing (apt-get install bpftrace): the point runs without the tracer'
          : 'the tracer needs root (bpftrace loads BPF programs): the point runs without it',
      );
    } finally {
      process.env['PATH'] = path;
    }
    if (process.getuid?.() === 0) expect(await tracerUnavailable()).toBeNull();
  });

  it('generates its script from numbers only', () => {
    const s = bpftraceScript([4026531833, 4026532001], 100, 104);
    expect(s).toContain('@host[4026532001] = 2;');
    expect(s).toContain('args->reason != 104');
    expect(() => bpftraceScript([Number.NaN], 100, undefined)).toThrow(/not a count or inode/);
    expect(() => bpftraceScript([1.5], 100, undefined)).toThrow(/not a count or inode/);
  });

  it('parses a real bpftrace run: hosts by index, reasons by name, times moved to the epoch', () => {
    const text = readFileSync(join(FIX, 'overflow-abort1.bpftrace.out'), 'utf8');
    const { events, over, lost } = parseTrace(text, ['server', 'loadgen-1'], 1_000, kernelReasons());
    expect(over).toBe(0);
    expect(lost).toBe(0);
    const drops = events.filter((e) => e.kind === 'drop' && e.reason === 'TCP_LISTEN_OVERFLOW');
    expect(drops.map((e) => [e.host, e.lport, e.rport, e.flags])).toEqual([0, 1, 2, 3].map((i) => ['server', 8080, HELD + i, 'ACK|PSH']));
    expect(events.filter((e) => e.kind === 'reset-received').map((e) => [e.host, e.lport])).toEqual([0, 1, 2, 3].map((i) => ['loadgen-1', HELD + i]));
    const byHost = countEvents(events);
    expect(byHost['server']!['reset-sent']).toBe(4);
    const first = JSON.parse(text.split('\n')[1]!) as { t: number };
    expect(events[0]!.t).toBeCloseTo(first.t / 1e6 + 1_000, 2);
    expect(tcpFlags(0x12)).toBe('SYN|ACK');
  });

  it('turns a pcap read by the real tshark into handshake timelines', async () => {
    const r = await execa('tshark', tsharkArgv(join(FIX, 'overflow-abort1.pcap')), { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const { packets, timelines } = parseTshark(r.stdout, 8080);
    expect(packets).toBe(57);
    expect(timelines).toHaveLength(13); // 4 held, 5 fill (limit 4 + 1), 4 late
    for (const c of timelines.slice(0, 4)) {
      expect(c.client).toMatch(new RegExp(`:${HELD}|:${HELD + 1}|:${HELD + 2}|:${HELD + 3}`));
      expect(c.syn).toHaveLength(1);
      expect(c.synAck).toHaveLength(1);
      expect(c.rst?.by).toBe('server');
      expect(c.rst!.t).toBeGreaterThan(c.data!);
    }
    const late = timelines.slice(9);
    for (const c of late) {
      expect(c.synAck).toHaveLength(0); // their SYNs met the full queue
      expect(c.syn.length).toBeGreaterThan(1);
    }
  });
});

// check() throws with the reason when the runtime cannot run here: CI has both, so that fails the test.
/** report.html in headless Chromium: every chart drawn with no error, a timeline per point with its marks on it. */
async function drawsTimelines(file: string, points: number): Promise<void> {
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    expect(errors).toEqual([]);
    const canvases = await page.$$eval('canvas', (c) => c.map((x) => x.id));
    expect(await page.$eval('body', (b) => b.dataset['chartsDrawn'])).toBe(String(canvases.length));
    const lanes = canvases.filter((id) => id.startsWith('lanes-'));
    expect(lanes).toHaveLength(points);
    const marks = await page.evaluate((ids) => {
      const C = (window as unknown as { Chart: { getChart(c: HTMLCanvasElement): { data: { datasets: Array<{ data: unknown[] }> } } } }).Chart;
      return ids.map((id) => C.getChart(document.getElementById(id) as HTMLCanvasElement).data.datasets.reduce((n, d) => n + d.data.length, 0));
    }, lanes);
    for (const n of marks) expect(n).toBeGreaterThan(13 * 2); // 13 connections, a SYN and more each
  } finally {
    await browser.close();
  }
}

const runtimes = [
  { name: 'netns', check: () => new NetnsRuntime().check() },
  { name: 'docker', check: () => new DockerRuntime().check() },
] as const;

describe.each(runtimes)('trace and capture on $name', ({ name, check }) => {
  it('overflow: events on the right host, in agreement with the counters and with each client', async () => {
    await check();
    const out = mkdtempSync(join(tmpdir(), `tcplab-trace-${name}-`));
    const res = await execa(
      process.execPath,
      [
        CLI,
        'run',
        '--scenario',
        'overflow',
        '--set',
        'server.backlog=4',
        '--set',
        // Both modes are the kernel's, on netns; Docker proves its wiring (each event on its host) with one.
        `server.sysctls.net.ipv4.tcp_abort_on_overflow=${name === 'netns' ? '0,1' : '1'}`,
        '--runtime',
        name,
        '--trace',
        '--capture',
        '--output',
        out,
      ],
      { reject: false, all: true },
    );
    expect(res.exitCode, res.all).toBe(0);
    expect(res.all).toMatch(/trace: bpftrace attached \(server, loadgen-1\)/);
    const dir = join(
      out,
      readdirSync(out).find((d) => /^\d{8}-/.test(d))!,
    );
    const points = readdirSync(join(dir, 'points')).map((f) => JSON.parse(readFileSync(join(dir, 'points', f), 'utf8')) as PointRecord);
    expect(points).toHaveLength(name === 'netns' ? 2 : 1);
    for (const p of points) {
      const abort = Number(p.hosts['server']!.sysctls.readBack['net.ipv4.tcp_abort_on_overflow']);
      const events = readFileSync(join(dir, p.trace!.file!), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as TraceEvent);
      // tcpdump wrote every packet its filter matched (before --immediate-mode, the last second's
      // were left in its ring when it stopped: 75 of 89 written here).
      const cs = p.capture!.summary;
      expect([cs.droppedByKernel, cs.receivedByFilter], 'tcpdump: dropped, matched').toEqual([0, cs.captured]);
      const srv = p.hosts['server']!;
      const lg = p.hosts['loadgen-1']!;
      const ctr = (h: typeof srv, n: string) => h.counters.delta[n] ?? 0;
      // Attributed to the right host: each host's events are on its own address.
      for (const e of events.filter((x) => x.lport === 8080 || x.rport === 8080)) {
        expect(e.local, JSON.stringify(e)).toBe(e.host === 'server' ? srv.address : lg.address);
      }
      const on = (h: string, kind: string, f: (e: (typeof events)[number]) => boolean = () => true) =>
        events.filter((e) => e.host === h && e.kind === kind && f(e));
      // Counts against the counters.
      const overflowDrops = on('server', 'drop', (e) => e.reason === 'TCP_LISTEN_OVERFLOW');
      const lateSyns = p
        .capture!.timelines!.filter((c) => Number(c.client.split(':')[1]) < HELD)
        .slice(5)
        .reduce((n, c) => n + c.syn.length, 0);
      // Events the tracer reports lost (bpftrace's buffer; CI29 lost 14, 4 of them these drops)
      // can be missing from the sum, and only those.
      const overflows = ctr(srv, 'TcpExtListenOverflows');
      const lost = p.trace!.summary!.dropped;
      expect(overflowDrops.length + lateSyns, 'TCP_LISTEN_OVERFLOW drops + the SYNs that met the full queue ≤ ListenOverflows').toBeLessThanOrEqual(
        overflows,
      );
      // With abort 0, a held client's final ACK that meets the full queue is counted but may not
      // be freed as a drop with a reason (the request is kept, marked acked): one each at most.
      // CI29 and CI34 saw ListenOverflows 48 against 28 drops + 16 late SYNs with none lost, 4
      // held clients; four other runs saw none missing.
      const unfreed = abort === 0 ? (p.config.scenario.options['held'] as number) : 0;
      expect(
        overflowDrops.length + lateSyns + lost + unfreed,
        '… and short of it by no more than the events the tracer lost and one per held client',
      ).toBeGreaterThanOrEqual(overflows);
      // As the kernel counted them (every event, delivered or not), and as delivered when none was lost.
      const counted = (h: string, kind: string) => p.trace!.summary!.counted[h]?.[kind] ?? 0;
      expect(counted('server', 'reset-sent'), 'RSTs sent = OutRsts').toBe(ctr(srv, 'TcpOutRsts'));
      expect(counted('server', 'synack-retransmit'), 'SYN-ACK retransmissions = TCPSynRetrans (server)').toBe(ctr(srv, 'TcpExtTCPSynRetrans'));
      const synRetrans = on('loadgen-1', 'retransmit', (e) => e.state === 'SYN-SENT').length;
      const otherRetrans = on('loadgen-1', 'retransmit').length - synRetrans; // the held clients' data, abort 0
      // The late clients still in SYN-SENT when the point ends retransmit every second:
      // the counters are read after the tracer stopped (the state reports come last), so each
      // may have sent one more SYN in between (the gap is well under the 1 s between two of
      // their SYNs), counted by the kernel and not traced. Never fewer.
      const lateClients = (p.scenario.observed as { late: { pending: number } }).late.pending;
      const untraced = ctr(lg, 'TcpExtTCPSynRetrans') - (counted('loadgen-1', 'retransmit') - otherRetrans);
      expect(untraced, 'SYN retransmissions: TCPSynRetrans (client) − traced, within one per late client').toBeGreaterThanOrEqual(0);
      expect(untraced, 'SYN retransmissions: TCPSynRetrans (client) − traced, within one per late client').toBeLessThanOrEqual(lateClients);
      if (p.trace!.summary!.dropped === 0) {
        expect(on('server', 'reset-sent').length).toBe(counted('server', 'reset-sent'));
        expect(synRetrans).toBe(counted('loadgen-1', 'retransmit') - otherRetrans);
      }
      // Each held client: its ACK dropped for the overflow; the capture agrees with what the client saw.
      const o = p.scenario.observed as { held: { reset: number; waiting: number }; late: { pending: number }; fill: { connected: number } };
      const held = p.capture!.timelines!.filter((c) => Number(c.client.split(':')[1]) >= HELD);
      expect(held).toHaveLength(4);
      expect(new Set(overflowDrops.map((e) => e.rport))).toEqual(new Set(held.map((c) => Number(c.client.split(':')[1]))));
      expect(held.filter((c) => c.rst?.by === 'server').length, 'reset in the capture = reset as the client saw it').toBe(o.held.reset);
      expect(on('loadgen-1', 'reset-received', (e) => e.lport >= HELD).length).toBe(o.held.reset);
      if (abort === 1) {
        expect(o.held.reset).toBe(4);
        expect(on('server', 'reset-sent').every((e) => e.reason === 'INVALID_SYN')).toBe(true);
      } else {
        expect(o.held.waiting).toBe(4);
        expect(
          held.every((c) => c.synAck.length > 1),
          'abort 0: the held requests get their SYN-ACK again',
        ).toBe(true);
      }
      const others = p.capture!.timelines!.filter((c) => Number(c.client.split(':')[1]) < HELD);
      expect(others.slice(0, 5).filter((c) => c.ack !== undefined).length, 'fill: handshakes done = connected').toBe(o.fill.connected);
      expect(others.slice(5).filter((c) => c.synAck.length === 0).length, 'late: no SYN-ACK = still in SYN-SENT').toBe(o.late.pending);
      expect(p.scenario.verdicts.filter((v) => v.rule.startsWith('(events)')).length).toBeGreaterThan(0);
      // With the capture on, the late clients' SYN retransmission times are the packets' (a 10 ms
      // tolerance past the timer wheel's lateness, where ss's times need 0.1 s and its run time).
      expect(p.scenario.verdicts.find((v) => v.rule.startsWith("late clients' SYN retransmissions"))?.rule).toMatch(/from the packets/);
      // Every verdict, the events' and the rest: on Docker this is the overflow scenario's one point (test/lab/scenarios.test.ts runs the others').
      expectAllPass([p]);
      expect(abort, 'tcp_abort_on_overflow read back in the server host').toBe(p.config.server.sysctls['net.ipv4.tcp_abort_on_overflow']);
    }
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).toContain("What the kernel's events say");
    expect(html).toMatch(/its ACK dropped \(TCP_LISTEN_OVERFLOW\) at t = /);
    if (name === 'netns') await drawsTimelines(join(dir, 'report.html'), points.length);
  }, 240_000);
});

describe('trace on netns: timewait', () => {
  it('each socket going into TIME-WAIT shows as FIN-WAIT-2 (or CLOSING) → CLOSE on the closer: as many as the sampler saw in TIME-WAIT', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tcplab-trace-tw-'));
    const res = await execa(process.execPath, [CLI, 'run', '--scenario', 'timewait', '--runtime', 'netns', '--trace', '--output', out], {
      reject: false,
      all: true,
    });
    expect(res.exitCode, res.all).toBe(0);
    const dir = join(
      out,
      readdirSync(out).find((d) => /^\d{8}-/.test(d))!,
    );
    const p = JSON.parse(readFileSync(join(dir, 'points', 'p001-r1.json'), 'utf8')) as PointRecord;
    const closer = (p.scenario.predicted as { closer: string }).closer === 'server' ? 'server' : 'loadgen-1';
    const by = p.trace!.summary!.byHost[closer]!;
    const intoTimeWait = (by['state FIN-WAIT-2>CLOSE'] ?? 0) + (by['state CLOSING>CLOSE'] ?? 0);
    expect(p.trace!.summary!.dropped).toBe(0);
    expect(intoTimeWait).toBeGreaterThan(1000);
    expect(intoTimeWait, 'TIME-WAIT sockets at the peak (none expires within the 60 s)').toBe(
      p.hosts[closer]!.series.summary.peakStates['TIME-WAIT'],
    );
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toContain(
      `${closer}: ${intoTimeWait} sockets went from FIN-WAIT-2 or CLOSING to CLOSE, into TIME-WAIT`,
    );
  }, 120_000);
});

// Connect timeouts joined to the kernel's events on each client's own 4-tuple: 40 arrivals at
// 40/s against a server accepting 5/s from a queue of limit 2, the client's tcp_syn_retries 1
// (with the default 4 linear timeouts: SYNs again at 1 and 2 s, ETIMEDOUT at 3 s).
describe('trace on netns: arrivals', () => {
  it('every connect timeout seen on its own 4-tuple (its SYN sent again, tcp_retransmit_skb in SYN-SENT); no verdict FAILs with tcp_syn_retries 1', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tcplab-trace-arrivals-'));
    const file = join(out, 'arrivals.yaml');
    writeFileSync(
      file,
      'runtime: netns\ntrace: true\nscenario: {name: arrivals, options: {rate: 40, acceptRate: 5, watchMs: 4000}}\nserver: {backlog: 2}\nloadgens: [{sysctls: {net.ipv4.tcp_syn_retries: 1}}]\n',
    );
    const res = await execa(process.execPath, [CLI, 'sweep', file, '--output', out], { reject: false, all: true });
    expect(res.exitCode, res.all).toBe(0);
    const dir = join(
      out,
      readdirSync(out).find((d) => /^\d{8}-/.test(d))!,
    );
    const p = JSON.parse(readFileSync(join(dir, 'points', 'p001-r1.json'), 'utf8')) as PointRecord;
    const o = p.scenario.observed as { byOutcome: Record<string, number>; errorPorts: Record<string, number[]> };
    expect(o.byOutcome['timedout']).toBeGreaterThan(5);
    expect(o.errorPorts['timedout']).toHaveLength(o.byOutcome['timedout']!);
    // The kernel's own events, read here: each timed-out client's port has its SYN retransmitted.
    const events = p.trace!.events;
    expect(p.trace!.summary.dropped).toBe(0);
    for (const port of o.errorPorts['timedout']!)
      expect(
        events.some((e) => e.host === 'loadgen-1' && e.kind === 'retransmit' && e.lport === port && e.state === 'SYN-SENT'),
        `port ${port}`,
      ).toBe(true);
    const v = p.scenario.verdicts.find((x) => x.rule.startsWith("every connection error seen in the kernel's events"))!;
    expect([v.verdict, v.observed]).toEqual(['PASS', 0]);
    expect(v.reason).toContain(`timedout: ${o.byOutcome['timedout']} of ${o.byOutcome['timedout']} with its SYN sent again`);
    // The comb with tcp_syn_retries 1: teeth at 0, 1 and 2 s, then ETIMEDOUT (not 5 retransmissions).
    expect((p.scenario.predicted as { teeth: unknown[] }).teeth).toHaveLength(3);
    expect(p.scenario.verdicts.filter((x) => x.verdict === 'FAIL')).toEqual([]);
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toMatch(
      /connect timeouts: SYNs dropped on a full accept queue \(ListenOverflows \d+; the kernel's events on their own 4-tuple: (\d+) of \1 with/,
    );
  }, 120_000);
});

describe('trace on netns: synflood', () => {
  it("each request's SYN-ACK retransmissions as the server sent them (its first SYN-ACK as the loadgen's nft rule dropped it), at the model's 1, 3 … s: an (events) verdict and the report's lines", async () => {
    const out = mkdtempSync(join(tmpdir(), 'tcplab-trace-flood-'));
    const res = await execa(
      process.execPath,
      [CLI, 'run', '--scenario', 'synflood', '--set', 'server.sysctls.net.ipv4.tcp_syncookies=0', '--runtime', 'netns', '--trace', '--output', out],
      { reject: false, all: true },
    );
    expect(res.exitCode, res.all).toBe(0);
    const dir = join(
      out,
      readdirSync(out).find((d) => /^\d{8}-/.test(d))!,
    );
    const p = JSON.parse(readFileSync(join(dir, 'points', 'p001-r1.json'), 'utf8')) as PointRecord;
    const v = p.scenario.verdicts.find((x) => x.rule.startsWith("(events) each request's SYN-ACK retransmissions"));
    expect(v?.verdict, JSON.stringify(v)).toBe('PASS');
    const kept = (p.scenario.observed as { synRecvAfterFlood: number }).synRecvAfterFlood;
    const srv = p.trace!.summary!.counted['server']!;
    // Every kept request had its SYN-ACK sent again at 1 s (and at 3 s, the scenario lasting longer).
    expect(srv['synack-retransmit']).toBeGreaterThanOrEqual(kept);
    expect(srv['synack-retransmit']).toBe(p.hosts['server']!.counters.delta['TcpExtTCPSynRetrans']);
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toMatch(/request from :20\d{3}: SYN-ACKs at t = .*, retransmissions \+1\.0\d\d/);
  }, 120_000);
});
