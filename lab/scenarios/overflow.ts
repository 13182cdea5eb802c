// overflow: what a full accept queue does to new handshakes, and what tcp_abort_on_overflow
// changes. The server stops accepting; the client (in-host/overflow-client.js) first opens HELD
// handshakes whose final ACK an nft rule in the loadgen's namespace holds back (they sit in
// the server's SYN queue), then fills the accept queue with limit + 1 connections, then sends
// LATE SYNs that meet the full queue. Then the rule goes and each held client sends its
// request: its ACK now meets the full queue.
// Kernel model: a SYN meeting a full accept queue is dropped whatever abort_on_overflow says
// (ListenOverflows, no SYN-ACK, the client retransmits after 1 s); a final ACK meeting it is
// answered with RST at once when abort_on_overflow = 1 (EmbryonicRsts), dropped when 0 (the
// client believes it is connected; served later if the server accepts again).
import { z } from 'zod';
import { int, RESERVED_PORTS } from '../fields.js';
import type { GroupOutcome } from '../in-host/overflow-client.js';
import { control, waitForLine } from '../server-host.js';
import {
  atLeast,
  atMost,
  counter,
  counterOf,
  defineScenario,
  equal,
  numSysctl,
  plannedLimit,
  predictedLimit,
  recvQ,
  type RuleVerdict,
  tooManyClients,
} from './common.js';

export interface Observed {
  held: GroupOutcome;
  fill: GroupOutcome;
  late: GroupOutcome;
  lateBeforeRelease: GroupOutcome;
}

export interface Predicted {
  limit: number;
  somaxconn: number;
  abortOnOverflow: number;
  acceptRate: number;
  held: number;
  fill: number;
  late: number;
}

const Options = z
  .object({
    /** Handshakes whose final ACK is held back until the accept queue is full. */
    held: int(1, 1000).default(4),
    /** SYNs sent once the accept queue is full. */
    late: int(0, 1000).default(4),
    /** Connections the server accepts per second after the release (0: none). */
    acceptRate: int(0, 100000).default(0),
    /** How long the clients are watched after the release, ms. */
    holdMs: int(500, 60000).default(3000),
  })
  .strict();

const RESET_AT_ONCE_MS = 200; // well under the 1 s of the first SYN-ACK/SYN retransmission
const FIRST_RETRANSMIT_MS = 1000;

export const overflow = defineScenario<z.infer<typeof Options>, Observed, Predicted>({
  name: 'overflow',
  options: Options,
  loadgenCaps: ['NET_ADMIN'],
  reservedPorts: RESERVED_PORTS.overflow,
  check: (c, o) => tooManyClients(c, plannedLimit(c) + 1 + o.held + o.late, 'the overflow client (held + limit + 1 + late)'),
  async drive(ctx) {
    const o = ctx.options;
    const somaxconn = numSysctl(ctx.serverSysctl, 'net.core.somaxconn');
    const abort = numSysctl(ctx.serverSysctl, 'net.ipv4.tcp_abort_on_overflow');
    const limit = predictedLimit(ctx.config.server.backlog, somaxconn);
    await control(ctx.server, ctx.controlPort, '/pause', 'POST');
    const args = [ctx.server.address, ctx.port, o.held, limit + 1, o.late, o.holdMs].map(String);
    const proc = ctx.client.start([...ctx.client.node('dist/lab/in-host/overflow-client.js'), ...args], 'overflow');
    try {
      await waitForLine(proc, /"event":"released"/, 30_000 + (limit + 1) * 50, 'overflow client');
      if (o.acceptRate > 0) {
        await control(ctx.server, ctx.controlPort, `/accept-rate?perSecond=${o.acceptRate}`, 'POST');
        await control(ctx.server, ctx.controlPort, '/resume', 'POST');
      }
      const line = await waitForLine(proc, /"event":"result"/, o.holdMs + 15_000, 'overflow client');
      const { held, fill, late, lateBeforeRelease } = JSON.parse(line) as Observed;
      const predicted: Predicted = {
        limit,
        somaxconn,
        abortOnOverflow: abort,
        acceptRate: o.acceptRate,
        held: o.held,
        fill: limit + 1,
        late: o.late,
      };
      return { observed: { held, fill, late, lateBeforeRelease }, predicted };
    } finally {
      await proc.stop();
    }
  },
  judge(_ctx, { observed: o, predicted: p }, obs) {
    const invalid =
      o.fill.connected !== p.fill
        ? `only ${o.fill.connected} of ${p.fill} fill connections completed: the queue was not full`
        : o.held.connected !== p.held
          ? `only ${o.held.connected} of ${p.held} held handshakes got a SYN-ACK`
          : undefined;
    const v: RuleVerdict[] = [
      equal(
        'accept queue fills with limit + 1 connections',
        p.fill,
        o.fill.connected,
        'handshakes complete while the queue holds no more than the limit',
      ),
      equal(
        'SYNs meeting a full queue are dropped: clients still in SYN-SENT',
        p.late,
        o.lateBeforeRelease.pending,
        'no SYN-ACK and no RST, whatever tcp_abort_on_overflow says',
        invalid,
      ),
      atLeast(
        'each dropped SYN counts in ListenOverflows',
        p.late,
        counter(obs, 'server', 'TcpExtListenOverflows'),
        'tcp_conn_request counts the overflow and drops',
        invalid,
      ),
    ];
    if (p.abortOnOverflow === 1) {
      v.push(
        equal('abort_on_overflow=1: held clients reset', p.held, o.held.reset, 'a final ACK meeting a full queue is answered with RST', invalid),
        p.acceptRate > 0
          ? atLeast(
              'abort_on_overflow=1: EmbryonicRsts ≥ held clients',
              p.held,
              counter(obs, 'server', 'TcpExtEmbryonicRsts'),
              'each RST counts as an embryonic reset; with the server accepting again, a late client whose ACK finds the queue full again is reset too',
              invalid,
            )
          : equal(
              'abort_on_overflow=1: EmbryonicRsts = held clients',
              p.held,
              counter(obs, 'server', 'TcpExtEmbryonicRsts'),
              'the RST is counted as an embryonic reset',
              invalid,
            ),
        atMost(
          'abort_on_overflow=1: RST at once (ms after the ACK, slowest)',
          RESET_AT_ONCE_MS,
          o.held.resetMs.length ? Math.max(...o.held.resetMs) : null,
          'the reset answers the ACK itself, no timer',
          invalid,
        ),
      );
    } else {
      v.push(
        equal('abort_on_overflow=0: no held client reset', 0, o.held.reset, 'the ACK is dropped; the request stays in the SYN queue', invalid),
        equal('abort_on_overflow=0: EmbryonicRsts = 0', 0, counter(obs, 'server', 'TcpExtEmbryonicRsts'), 'nothing is reset', invalid),
        p.acceptRate > 0
          ? equal(
              'abort_on_overflow=0: held clients served once the server accepts again',
              p.held,
              o.held.answered,
              'the SYN-ACK is retransmitted, the client ACKs again and gets in',
              invalid,
            )
          : equal(
              'abort_on_overflow=0: held clients believe they are connected and wait',
              p.held,
              o.held.waiting,
              'the server never accepts, so they get no answer and no reset',
              invalid,
            ),
      );
    }
    if (p.acceptRate > 0 && p.late > 0) {
      v.push(
        atLeast(
          'late clients connect only after a SYN retransmission (ms, fastest)',
          FIRST_RETRANSMIT_MS - 10,
          o.late.connectMs.length ? Math.min(...o.late.connectMs) : null,
          'their first SYN was dropped; the retransmission comes after 1 s',
          invalid,
        ),
      );
    }
    return v;
  },
  report: {
    metrics: [
      { label: 'held clients reset', value: (p) => p.scenario.observed.held.reset },
      { label: 'held clients served', value: (p) => p.scenario.observed.held.answered },
      {
        label: 'late clients in SYN-SENT before the release',
        value: (p) => p.scenario.observed.lateBeforeRelease.pending,
        predicted: (p) => p.scenario.predicted.late,
      },
      { label: 'EmbryonicRsts', value: counterOf('server', 'TcpExtEmbryonicRsts') },
      { label: 'ListenOverflows', value: counterOf('server', 'TcpExtListenOverflows') },
      { label: 'client SYN retransmits', value: counterOf('loadgen-1', 'TcpExtTCPSynRetrans') },
    ],
    series: { label: 'server accept queue (Recv-Q) over time', host: () => 'server', value: recvQ },
  },
});
