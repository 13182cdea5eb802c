// throughput, overflow, synflood, timewait and herd end to end on both runtimes: a small sweep each, every
// verdict asserted on this kernel, and the numbers behind the verdicts read from the records
// (so a rule that stopped holding fails here even if a verdict function were wrong).
import { describe, expect, it } from 'vitest';
import { allPass, delta, obs, sweeper } from '../helpers/sweeps.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PointRecord } from '../../lab/pipeline/record.js';
import { expectAllPass } from '../helpers/verdicts.js';
import { ONE_POINT_PER_SCENARIO } from '../helpers/one-point.js';
import { requestsPerCpuSec } from '../../lab/scenarios/throughput.js';

const sweep = sweeper('scenarios');

// The kernel's rules do not depend on the runtime: each scenario's full matrix runs on netns;
// Docker proves its own wiring with one point per scenario (below).
describe.each(['netns'] as const)('scenarios on %s', (rt) => {
  it('throughput: the load run, what the server counted and spent; the verdict says whether the rate can be trusted', async () => {
    const { recs } = await sweep(
      `throughput-${rt}.yaml`,
      `runtime: ${rt}\nscenario: {name: throughput}\nloadgens: [{options: {connections: 4, duration: 2, rate: 3000}}]\nsweep: {matrix: {server.model: [single, reuseport]}}\n`,
    );
    expect(recs.map((p) => p.config.server.model)).toEqual(['single', 'reuseport']);
    for (const p of recs) {
      const o = obs(p);
      expect(o['requests']).toBeGreaterThan(1000);
      // The server counted what autocannon counted (± the requests in flight when it stopped).
      expect(Math.abs(p.server.requests! - o['requests'])).toBeLessThanOrEqual(4 + 1);
      expect(p.server.cpuSec).toBeGreaterThan(0);
      // The report's requests per CPU-second is the record's requests over its CPU seconds.
      expect(requestsPerCpuSec(p)).toBe(Math.round(p.server.requests! / p.server.cpuSec!));
      // At 3,000 req/s autocannon has CPU to spare and the server keeps up: both rules PASS.
      expect(p.scenario.load!.loadgenBound).toBe(false);
      expect(p.scenario.verdicts.map((v) => [v.rule, v.verdict])).toEqual([
        ['measurement valid (load generator not the bottleneck)', 'PASS'],
        ['server kept up with the offered rate (req/s, ≥ 95 % of it)', 'PASS'],
      ]);
      expect(o['rps']).toBeGreaterThanOrEqual(2850);
      // Its footprint during the load, from /proc in its host: one process; its threads are Node's and its loops (2 for reuseport).
      const peak = (p.scenario.observed as { peak: { threads: number; processes: number; pssKb: number } }).peak;
      expect(peak.processes).toBe(1);
      expect(peak.threads).toBeGreaterThanOrEqual(p.config.server.threads + 1);
      expect(peak.pssKb).toBeGreaterThan(1000);
    }
  }, 120_000);

  // Errors first: a server that takes 2 connections at a time (maxConnections) against 6 clients
  // closes the others; the load tool counts their errors, and no rate verdict may pass. As fast
  // as it goes, each of autocannon's connections sends its request as it connects, so a closed
  // one is an error (at a fixed rate an idle one could be closed and reopened without one: CI36
  // saw 0 errors at 500/s).
  it('throughput with connection errors: the errors verdict first (a server FAIL naming them), no rate verdict PASS', async () => {
    const { recs } = await sweep(
      `errors-${rt}.yaml`,
      `runtime: ${rt}\nscenario: {name: throughput}\nserver: {maxConnections: 2}\nloadgens: [{options: {connections: 6, duration: 1}}]\n`,
    );
    const p = recs[0]!;
    const errors = Object.values(p.scenario.load!.result.errors).reduce((a, b) => a + b, 0);
    expect(errors).toBeGreaterThan(0);
    const [first, ...rest] = p.scenario.verdicts;
    expect(first).toMatchObject({
      rule: 'errors first: every request answered, no connection error',
      verdict: 'FAIL',
      about: 'server',
      observed: errors,
    });
    expect(rest.length).toBeGreaterThan(0);
    expect(rest.filter((v) => v.verdict === 'PASS')).toEqual([]);
  }, 60_000);

  // A new connection per request at a fixed rate: the lab's open-loop client (arrivals) holds it
  // whatever the design; a blocking design that serves one connection per thread at a time
  // keeps it too, since no keep-alive client holds a waiter.
  // At 100/s: a fork()ed child per connection costs this machine's server ~5 ms of CPU (188
  // requests per CPU-second measured), so 300/s left it no CPU to spare (CI31: INCONCLUSIVE).
  it('throughput with a new connection per request (arrivals, keep-alive off): iterative, prethread, single and fork keep 100/s, every request counted by the server', async () => {
    const { recs } = await sweep(
      `close-${rt}.yaml`,
      `runtime: ${rt}\nscenario: {name: throughput}\nloadgens: [{tool: arrivals, options: {duration: 2, rate: 100, keepAlive: false}}]\nsweep: {zip: {server.model: [iterative, prethread, single, fork], server.threads: [1, 3, 1, 1]}}\n`,
    );
    expect(recs.map((p) => p.config.server.model)).toEqual(['iterative', 'prethread', 'single', 'fork']);
    for (const p of recs) {
      allPass(p);
      const r = p.scenario.load!.result;
      expect([p.config.server.model, r.tool, r.requests, r.latencyCorrected]).toEqual([p.config.server.model, 'arrivals', 200, true]);
      expect(Object.values(r.errors).every((n) => n === 0)).toBe(true);
      // The server's own count: one request on each of 200 connections.
      expect(p.server.requests).toBe(200);
    }
  }, 120_000);
  // httperf (Debian's), the other open-loop tool: it polls without sleeping, so it uses a core at
  // any rate; whether it kept its schedule is its own clock's to say, not its CPU's.
  it('throughput with httperf at 2,000 new connections/s: every connection a request the server and the kernel counted; a core busy, yet not loadgen-bound', async () => {
    const { recs } = await sweep(
      `httperf-${rt}.yaml`,
      `runtime: ${rt}\nscenario: {name: throughput}\nloadgens: [{tool: httperf, options: {duration: 2, rate: 2000, keepAlive: false}}]\n`,
    );
    const p = recs[0]!;
    allPass(p);
    const load = p.scenario.load!;
    expect(load.argv).toContain('--hog');
    expect([load.result.tool, load.result.requests, load.result.latencyMs]).toEqual(['httperf', 4000, null]);
    expect(Object.values(load.result.errors).every((n) => n === 0)).toBe(true);
    expect(p.server.requests).toBe(4000);
    expect(delta(p, 'server', 'TcpPassiveOpens')).toBe(4000);
    expect(load.cpu!.cores).toBeGreaterThan(0.75);
    expect(load.loadgenBound).toBe(false);
  }, 60_000);

  // Paused with SIGSTOP under the backlog and overflow rules, they are test/lab/conformance.test.ts's.
  it('server kinds: nginx (2 workers) and a node:http command keep a fixed rate, their processes found by their listener', async () => {
    const command = `command: [node, -e, "require('http').createServer((q, s) => s.end('hello')).listen(+process.env.PORT, '0.0.0.0', +process.env.BACKLOG)"]`;
    const load = await sweep(
      `kinds-load-${rt}.yaml`,
      `runtime: ${rt}\nscenario: {name: throughput}\nserver: {${command}}\nloadgens: [{options: {connections: 4, duration: 2, rate: 2000}}]\nsweep: {zip: {server.kind: [nginx, command], server.threads: [2, 1]}}\n`,
    );
    expect(load.recs.map((p) => p.server.kind)).toEqual(['nginx', 'command']);
    for (const p of load.recs) {
      allPass(p);
      // No counters of its own: the requests are the load generator's, the CPU that of the processes holding the listener.
      expect(p.server.requests).toBeNull();
      expect(p.server.stats).toBeNull();
      expect(p.server.cpuSec).toBeGreaterThan(0);
      expect(requestsPerCpuSec(p)).toBe(Math.round(p.scenario.load!.result.requests / p.server.cpuSec!));
      // nginx: the master and its 2 workers; node: one process.
      expect(p.server.processes!.pids).toHaveLength(p.server.kind === 'nginx' ? 3 : 1);
      expect((p.scenario.observed as { peak: { processes: number } }).peak.processes).toBe(p.server.kind === 'nginx' ? 3 : 1);
      expect(obs(p)['rps']).toBeGreaterThanOrEqual(1900);
    }
  }, 120_000);

  // Python's http.server passes listen() its own backlog, socketserver.TCPServer's
  // request_queue_size = 5, whatever the lab asks: the kernel's rules hold against 5. The lab
  // reads the 5 from the listen() syscall (bpftrace, as root), so it tells the server's own
  // backlog from the lab's even where somaxconn 4 caps both to the same Send-Q.
  it("a server that picks its own backlog (Python's http.server: 5): every kernel rule PASS against its Send-Q; the server's own verdict FAILs on the backlog it passed, read from the listen() syscall", async () => {
    const { dir, recs } = await sweep(
      `own-backlog-${rt}.yaml`,
      `runtime: ${rt}\nscenario: {name: backlog, options: {extraClients: 3, holdMs: 1200}}\nserver: {kind: command, command: [python3, -m, http.server, '{port}', --bind, 0.0.0.0], backlog: 16}\nsweep: {matrix: {server.sysctls.net.core.somaxconn: [4096, 4]}}\n`,
    );
    // Python passed 5 at both: Send-Q 5, then 4 where somaxconn 4 caps it (and the lab's 16 alike).
    const listened = (sendQ: number, asked: number) => ({
      method: 'listen() syscall',
      sockets: [{ local: '0.0.0.0', sendQ }],
      limit: sendQ,
      backlog: { value: 5, exact: true },
      asked,
      honoured: false,
    });
    expect(recs.map((p) => p.server.listen)).toEqual([listened(5, 16), listened(4, 4)]);
    for (const p of recs) {
      const v = p.scenario.verdicts;
      expect(v.filter((x) => x.about !== 'server').map((x) => [x.rule, x.verdict])).toEqual([
        ['accept queue limit (Send-Q) holds through the burst', 'PASS'],
        ['accept queue peak (Recv-Q) = limit + 1', 'PASS'],
        ['handshakes completed = limit + 1', 'PASS'],
        ['clients left waiting in SYN-SENT', 'PASS'],
      ]);
      expect(v.filter((x) => x.about === 'server').map((x) => [x.rule, x.verdict, x.predicted, x.observed])).toEqual([
        ["the server passes listen() the lab's backlog 16", 'FAIL', 16, 5],
      ]);
    }
    // The queue filled to the server's limit + 1, and limit + 1 + 3 clients came.
    expect(recs.map((p) => [p.hosts['server']!.series.summary.listener!.peakRecvQ, obs(p)['connected'], obs(p)['pending']])).toEqual([
      [6, 6, 3],
      [5, 5, 3],
    ]);
    const report = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(report).toContain("the server asked listen() for 5 (listen() syscall; Send-Q 5); the lab's backlog 16 was not used");
  }, 60_000);

  it('overflow: full queue drops SYNs in both modes; held final ACKs: abort_on_overflow=1 resets at once, 0 waits (or is served later)', async () => {
    const { recs } = await sweep(
      `overflow-${rt}.yaml`,
      `runtime: ${rt}\nscenario: {name: overflow, options: {held: 3, late: 3, holdMs: 2500}}\nserver: {backlog: 4}\nsweep:\n  matrix:\n    server.sysctls.net.ipv4.tcp_abort_on_overflow: [0, 1]\n    scenario.options.acceptRate: [0, 20]\n`,
    );
    expect(recs.map((p) => [p.settings['server.sysctls.net.ipv4.tcp_abort_on_overflow'], p.settings['scenario.options.acceptRate']])).toEqual([
      [0, 0],
      [0, 20],
      [1, 0],
      [1, 20],
    ]);
    for (const p of recs) {
      allPass(p);
      expect(p.hosts['server']!.sysctls.readBack['net.ipv4.tcp_abort_on_overflow']).toBe(
        String(p.settings['server.sysctls.net.ipv4.tcp_abort_on_overflow']),
      );
      expect(obs(p)['fill'].connected).toBe(5);
      expect(obs(p)['lateBeforeRelease'].pending).toBe(3);
      expect(delta(p, 'server', 'TcpExtListenOverflows')).toBeGreaterThanOrEqual(3);
    }
    const [off0, off20, on0, on20] = recs as [PointRecord, PointRecord, PointRecord, PointRecord];
    expect([obs(off0)['held'].reset, obs(off0)['held'].waiting, delta(off0, 'server', 'TcpExtEmbryonicRsts')]).toEqual([0, 3, 0]);
    expect([obs(off20)['held'].reset, obs(off20)['held'].answered]).toEqual([0, 3]);
    for (const p of [on0, on20]) {
      expect(obs(p)['held'].reset).toBe(3);
      expect(Math.max(...obs(p)['held'].resetMs)).toBeLessThan(200);
    }
    expect(delta(on0, 'server', 'TcpExtEmbryonicRsts')).toBe(3);
    // Accepting again, a late client's ACK can meet a queue that filled up again: reset too.
    expect(delta(on20, 'server', 'TcpExtEmbryonicRsts')).toBe(3 + obs(on20)['late'].reset);
    // With the server accepting again, late clients get in only after their SYN is retransmitted.
    for (const p of [off20, on20]) expect(Math.min(...obs(p)['late'].connectMs)).toBeGreaterThanOrEqual(990);
  }, 240_000);

  it('synflood: SYN queue = min(backlog, somaxconn) + 1; M caps it only with cookies off; cookies keep the legit client served, unless the accept queue is full', async () => {
    const { recs } = await sweep(
      `synflood-${rt}.yaml`,
      `runtime: ${rt}\nscenario: {name: synflood, options: {flood: 300, intervalUs: 200, legitTimeoutMs: 2500}}\nserver: {backlog: 64}\nsweep:\n  zip:\n    server.sysctls.net.ipv4.tcp_syncookies: [0, 0, 1, 2, 1, 1]\n    server.sysctls.net.ipv4.tcp_max_syn_backlog: [4096, 32, 32, 32, 32, 32]\n    scenario.options.acceptQueueFull: [false, false, false, false, true, false]\n    server.sysctls.net.core.somaxconn: [4096, 4096, 4096, 4096, 4096, 32]\n`,
    );
    for (const p of recs) allPass(p);
    const synRecv = recs.map((p) => obs(p)['synRecvAfterFlood']);
    const legit = recs.map((p) => obs(p)['legit'].connected);
    const cookies = recs.map((p) => delta(p, 'server', 'TcpExtSyncookiesSent'));
    // cookies 0, M 4096: L + 1 = 65; cookies 0, M 32: 32 − 8 + 1 = 25; cookies 1: 65 (M no part); cookies 2: none kept.
    // …and with the accept queue full first, cookies on: nothing kept, no cookie, the legit client not served.
    // …and somaxconn 32 under backlog 64: L = 32, so 33 kept and the rest get cookies.
    expect(synRecv).toEqual([65, 25, 65, 0, 0, 33]);
    expect(legit).toEqual([0, 0, 1, 1, 0, 1]);
    expect(cookies).toEqual([0, 0, 300 - 65 + 1, 300 + 1, 0, 300 - 33 + 1]);
    expect(recs.map((p) => obs(p)['sent'])).toEqual([300, 300, 300, 300, 300, 300]);
    expect(obs(recs[4]!)['during']['TcpExtListenOverflows']).toBeGreaterThanOrEqual(300);
    expect(delta(recs[0]!, 'server', 'TcpExtTCPReqQFullDrop')).toBeGreaterThanOrEqual(300 - 65);
  }, 240_000);

  it('timewait: TIME_WAIT on the closer for 60 s; the client runs out of ports unless tw_reuse=1 with timestamps', async () => {
    const { recs } = await sweep(
      `timewait-${rt}.yaml`,
      `runtime: ${rt}\nscenario: {name: timewait, options: {durationMs: 1500, concurrency: 4}}\nloadgens: [{sysctls: {net.ipv4.ip_local_port_range: "40000 40099"}}]\nsweep:\n  zip:\n    scenario.options.closer: [client, client, client, client, server, client]\n    loadgens.0.sysctls.net.ipv4.tcp_tw_reuse: [0, 1, 2, 1, 0, 0]\n    loadgens.0.sysctls.net.ipv4.tcp_timestamps: [1, 1, 1, 0, 1, 1]\n    loadgens.0.sysctls.net.ipv4.tcp_fin_timeout: [60, 60, 60, 60, 60, 5]\n`,
    );
    for (const p of recs) allPass(p);
    const [r0, r1, r2, r1nots, srv, fin5] = recs as [PointRecord, PointRecord, PointRecord, PointRecord, PointRecord, PointRecord];
    // tcp_fin_timeout bounds FIN-WAIT-2, not TIME_WAIT: 5 s changes nothing here (lifetime checked below).
    expect(fin5.hosts['loadgen-1']!.sysctls.readBack['net.ipv4.tcp_fin_timeout']).toBe('5');
    // 100 ports, less any a listener on the loadgen holds (Docker's DNS resolver, now and then).
    const free = (p: PointRecord) => 100 - (p.scenario.predicted as { busyPorts: number }).busyPorts;
    for (const p of [r0, r2, r1nots, fin5]) {
      expect(free(p)).toBeGreaterThanOrEqual(rt === 'netns' ? 100 : 98);
      expect(obs(p)['ok']).toBe(free(p));
      expect(obs(p)['eaddrnotavail']).toBeGreaterThan(0);
      expect(obs(p)['timeWait']).toEqual({ client: free(p), server: 0 });
    }
    expect(obs(r1)['ok']).toBeGreaterThan(100);
    expect(delta(r1, 'loadgen-1', 'TcpExtTWRecycled')).toBeGreaterThan(0);
    expect(obs(srv)['eaddrnotavail']).toBe(0);
    expect(obs(srv)['ok']).toBeGreaterThan(100);
    expect(obs(srv)['timeWait'].client).toBe(0);
    expect(obs(srv)['timeWait'].server).toBeGreaterThan(0);
    for (const p of recs) expect(Math.abs(obs(p)['timeWaitLifetimeSec'] - 60)).toBeLessThanOrEqual(1.5);
    // The sampled TIME-WAIT series of the closer climbs; the other side's stays flat.
    const twPeak = (p: PointRecord, h: string) => Math.max(...p.hosts[h]!.series.samples.map((s) => s.states['TIME-WAIT'] ?? 0));
    expect(twPeak(r0, 'loadgen-1')).toBe(free(r0));
    expect(twPeak(srv, 'server')).toBeGreaterThan(0);
  }, 240_000);

  it('models: iterative serves 1 and prethread/prefork N, the rest wait in the accept queue (capped at limit + 1); thread adds a thread per connection, fork a process; the reactors none', async () => {
    const { recs } = await sweep(
      `models-${rt}.yaml`,
      `runtime: ${rt}\nscenario: {name: models, options: {holdMs: 1600, answerMs: 400}}\nserver: {backlog: 8}\nsweep:\n  zip: {server.model: [iterative, prethread, prefork, thread, fork, single, reactor-procs], server.threads: [1, 3, 3, 1, 1, 1, 2], scenario.options.clients: [20, 6, 20, 20, 6, 20, 6]}\n`,
    );
    const got = recs.map((p) => {
      allPass(p);
      const o = obs(p);
      return [p.config.server.model, o['clients'], o['answered'], o['queued'], o['addedThreads'], o['addedProcesses']];
    });
    // [design, clients, served at once, accept queue halfway through the hold, threads added,
    // processes added]; limit = min(8, 4096) = 8. Each design once: the blocking ones both
    // under the limit (prethread: 6 − 3 queued) and over it (iterative, prefork: capped at 9).
    expect(got).toEqual([
      ['iterative', 20, 1, 9, 0, 0],
      ['prethread', 6, 3, 3, 0, 0],
      ['prefork', 20, 3, 9, 0, 0],
      ['thread', 20, 20, 0, 20, 0],
      ['fork', 6, 6, 0, 0, 6],
      ['single', 20, 20, 0, 0, 0],
      ['reactor-procs', 6, 6, 0, 0, 0],
    ]);
  }, 180_000);
  // 1 s of arrivals at a fixed rate, below and above the knee of a server accepting 100/s from a
  // queue of limit 8. Numbers from the kernel: the server's ListenOverflows, each client's
  // connect time; what the model says of them is the verdicts'.
  it('arrivals: below the knee every connect at once; above it the dropped SYNs land on the 1 s tooth, one drop each = ListenOverflows; the comb, the knee and the errors in the report', async () => {
    const { dir, recs } = await sweep(
      `arrivals-${rt}.yaml`,
      `runtime: ${rt}\nscenario: {name: arrivals, options: {acceptRate: 100, watchMs: 2500}}\nserver: {backlog: 8}\nsweep: {matrix: {scenario.options.rate: [90, 160]}}\n`,
    );
    expectAllPass(recs);
    const [below, above] = recs.map((p) => ({ p, o: obs(p), drops: delta(p, 'server', 'TcpExtListenOverflows') }));
    expect(below!.o['perTooth'][0]).toBe(90);
    expect(below!.drops).toBe(0);
    // Above the knee: limit + 1 plus what the server accepted in that second got in at once; the
    // rest on the first retransmission, each with one SYN dropped on the full queue.
    const teeth = above!.o['perTooth'] as number[];
    expect(teeth[0]).toBeGreaterThan(90);
    expect(teeth[0]).toBeLessThan(115);
    expect(teeth[0]! + teeth[1]!).toBe(160);
    expect(above!.drops).toBe(teeth[1]);
    expect(above!.o['byOutcome']).toMatchObject({ answered: 160, timedout: 0, waiting: 0, refused: 0, reset: 0 });
    // Its connect times (log buckets, 10 a decade): one tooth within ms, one at 1 s (late by the
    // timer wheel's 36 ms at most and the client's turn: the buckets ending at 1 s and 1.26 s), nothing between.
    const buckets = above!.o['connectBuckets'] as Array<[number, number]>;
    const sum = (f: (ms: number) => boolean) => buckets.filter(([ms]) => f(ms)).reduce((s, [, n]) => s + n, 0);
    expect(sum((ms) => ms > 10 && ms < 1000)).toBe(0);
    expect(sum((ms) => ms >= 1000 && ms <= 1260)).toBe(teeth[1]);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('connect time after the SYN (the comb), per point');
    // The knee, measured against the model's, on one chart.
    expect(html).toContain('the knee: first SYNs lost per arrival rate');
    expect(html).toContain("the model's knee: 110/s (accept rate 100/s, limit 8)");
    expect(html).toContain('measured knee: first SYNs lost at 160/s (none at 90/s)');
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toMatch(
      /rate=160: no connection errors; 160 connections, in on the comb: \d+ at 0 s, \d+ at 1 s;.* predicted knee 110\/s/,
    );
  }, 120_000);
  it('herd: 4 prethread waiters, 150 connections one at a time: shared epoll wakes them all, accept/EPOLLEXCLUSIVE/SO_REUSEPORT one', async () => {
    const { recs } = await sweep(
      `herd-${rt}.yaml`,
      `runtime: ${rt}\nscenario: {name: herd, options: {connections: 150}}\nserver: {model: prethread, threads: 4}\nsweep: {matrix: {server.share: [accept, epoll, exclusive, reuseport]}}\n`,
    );
    expect(recs.map((p) => p.config.server.share)).toEqual(['accept', 'epoll', 'exclusive', 'reuseport']);
    const per: Record<string, { foreign: number; accepted: number[] }> = {};
    for (const p of recs) {
      allPass(p);
      const o = obs(p);
      const waiters = o['waiters'] as Array<{ accepted: number; voluntaryCtxSwitches: number }>;
      expect(waiters).toHaveLength(4);
      expect(waiters.reduce((a, w) => a + w.accepted, 0)).toBe(150);
      // The server's own /stats at the end agree: every connection accepted and closed.
      expect(p.server.stats!.total.accepted).toBe(150);
      per[p.config.server.share] = { foreign: o['foreignWakeups'], accepted: waiters.map((w) => w.accepted) };
    }
    // The herd, beside the others in the same sweep: many more wake-ups for others' connections.
    expect(per['epoll']!.foreign).toBeGreaterThan(150);
    for (const s of ['accept', 'exclusive', 'reuseport']) expect(per[s]!.foreign, s).toBeLessThanOrEqual(15);
    // EPOLLEXCLUSIVE: one waiter takes most; SO_REUSEPORT: all get some.
    expect(Math.max(...per['exclusive']!.accepted)).toBeGreaterThan(75);
    expect(Math.min(...per['reuseport']!.accepted)).toBeGreaterThan(0);
  }, 120_000);
});

// Docker: one point of each scenario, through the engine (containers, the lab network, the
// capabilities a scenario adds, sysctls set at creation and read back in the container), every
// verdict PASS. The full matrices above are the kernel's; these are the runtime's wiring.
// Overflow's point on Docker is test/observe/trace.test.ts's (with --trace and --capture, every
// verdict PASS, its sysctl read back): not run twice. timewait, models and herd add no wiring
// of their own on Docker (two containers, the server's options; a container's sysctls set at
// creation and read back are test/runtime/docker.test.ts's): proven on netns only.
const DOCKER_PROVES_NOTHING_NEW = ['overflow', 'timewait', 'models', 'herd'];
describe('each scenario once on docker', () => {
  it.each(ONE_POINT_PER_SCENARIO.filter(([name]) => !DOCKER_PROVES_NOTHING_NEW.includes(name)))(
    '%s: every verdict PASS, the sysctls read back in the containers',
    async (name, body) => {
      const { recs } = await sweep(`docker-${name.replace(/\W+/g, '-')}.yaml`, `runtime: docker\n${body}\n`);
      expect(recs).toHaveLength(1);
      const p = recs[0]!;
      allPass(p);
      for (const [host, h] of Object.entries(p.hosts)) {
        const want = host === 'server' ? p.config.server.sysctls : p.config.loadgens[Number(host.split('-')[1]) - 1]!.sysctls;
        for (const [k, v] of Object.entries(want)) expect(h.sysctls.readBack[k], `${host} ${k}`).toBe(String(v));
      }
    },
    120_000,
  );
});
