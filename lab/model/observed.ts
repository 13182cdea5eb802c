// What the kernel (6.18, these machines) showed, with how each number was measured. The model's
// functions (lab/model/kernel.ts) are unit-tested against these rows (test/model/kernel.test.ts);
// the scenario and kernel tests re-measure them on whatever kernel runs the tests.

export interface Observation<I, O> {
  input: I;
  observed: O;
  how: string;
}

const BACKLOG_HOW =
  'kernel 6.18.44, 2026-12-03: `sudo bash test/fixtures/kernel/measure-accept-queue.sh "BACKLOG SOMAXCONN" …` (a C program calls listen(BACKLOG) in a fresh namespace with that somaxconn; `ss -Hltn` Send-Q)';

/** Accept queue limit (Send-Q) for listen(backlog) under somaxconn, each row measured. */
export const ACCEPT_QUEUE: Array<Observation<{ backlog: number; somaxconn: number }, number>> = [
  { input: { backlog: 0, somaxconn: 3 }, observed: 0, how: BACKLOG_HOW },
  { input: { backlog: 0, somaxconn: 50 }, observed: 0, how: BACKLOG_HOW },
  { input: { backlog: 10, somaxconn: 3 }, observed: 3, how: BACKLOG_HOW },
  { input: { backlog: 10, somaxconn: 50 }, observed: 10, how: BACKLOG_HOW },
  { input: { backlog: -100, somaxconn: 3 }, observed: 3, how: BACKLOG_HOW },
  { input: { backlog: -100, somaxconn: 50 }, observed: 50, how: BACKLOG_HOW },
  { input: { backlog: 2147483647, somaxconn: 3 }, observed: 3, how: BACKLOG_HOW },
  { input: { backlog: 2147483647, somaxconn: 50 }, observed: 50, how: BACKLOG_HOW },
  { input: { backlog: 16, somaxconn: 4096 }, observed: 16, how: BACKLOG_HOW },
  { input: { backlog: 200, somaxconn: 64 }, observed: 64, how: BACKLOG_HOW },
  { input: { backlog: -1, somaxconn: 128 }, observed: 128, how: BACKLOG_HOW },
  { input: { backlog: 100, somaxconn: 100 }, observed: 100, how: BACKLOG_HOW },
  { input: { backlog: 5, somaxconn: 4096 }, observed: 5, how: BACKLOG_HOW },
  { input: { backlog: 65535, somaxconn: 4096 }, observed: 4096, how: BACKLOG_HOW },
  { input: { backlog: 65536, somaxconn: 100000 }, observed: 65536, how: BACKLOG_HOW },
  { input: { backlog: 1, somaxconn: 1 }, observed: 1, how: BACKLOG_HOW },
];

const FLOOD_HOW =
  'kernel 6.18, 2026-12-02: synflood scenario: hping3 -S from the loadgen (SYN-ACKs dropped by nft in its namespace), `ss -n state syn-recv` on the server after the flood';

/** SYN-RECV requests a flood of unproven SYNs leaves (flood larger than every cap). */
export const SYN_QUEUE: Array<Observation<{ limit: number; maxSynBacklog: number; syncookies: number }, number>> = [
  { input: { limit: 511, maxSynBacklog: 16, syncookies: 0 }, observed: 13, how: FLOOD_HOW },
  { input: { limit: 511, maxSynBacklog: 128, syncookies: 0 }, observed: 97, how: FLOOD_HOW },
  { input: { limit: 511, maxSynBacklog: 10, syncookies: 0 }, observed: 9, how: FLOOD_HOW },
  { input: { limit: 64, maxSynBacklog: 4096, syncookies: 0 }, observed: 65, how: FLOOD_HOW },
  { input: { limit: 64, maxSynBacklog: 32, syncookies: 0 }, observed: 25, how: FLOOD_HOW },
  { input: { limit: 64, maxSynBacklog: 32, syncookies: 1 }, observed: 65, how: FLOOD_HOW },
  { input: { limit: 64, maxSynBacklog: 32, syncookies: 2 }, observed: 0, how: FLOOD_HOW },
];

/** SYN retransmission times and connect()'s ETIMEDOUT, s after the first SYN. */
export const SYN_TIMELINE: Array<
  Observation<{ synRetries: number; linearTimeouts: number }, { retransmitsAt?: number[]; retransmissions: number; timeoutAt: number }>
> = [
  {
    input: { synRetries: 6, linearTimeouts: 4 },
    observed: { retransmitsAt: [1, 2, 3, 4, 5, 7, 11, 19], retransmissions: 10, timeoutAt: 131 },
    how: 'kernel 6.18, 2026-12-02: connect() to a port whose SYN-ACKs never come, SYNs timed with tshark in the client namespace; ETIMEDOUT from connect()',
  },
  {
    input: { synRetries: 1, linearTimeouts: 0 },
    observed: { retransmissions: 1, timeoutAt: 3 },
    how: 'kernel 6.18, 2026-12-02: test/model/kernel.test.ts: connect() through an nft rule that drops the SYNs, in a fresh namespace',
  },
  {
    input: { synRetries: 2, linearTimeouts: 1 },
    observed: { retransmissions: 3, timeoutAt: 8 },
    how: 'kernel 6.18, 2026-12-02: test/model/kernel.test.ts: connect() through an nft rule that drops the SYNs, in a fresh namespace',
  },
  // tcp_syn_retries bounds the time, not the count: few retries with linear timeouts end early.
  {
    input: { synRetries: 1, linearTimeouts: 4 },
    observed: { retransmitsAt: [1, 2], retransmissions: 2, timeoutAt: 3 },
    how: 'kernel 6.18, 2026-12-04: connect() to a listener whose accept queue stays full (listen(0), one connection in it), in a fresh namespace: ETIMEDOUT after 3.05 s, TcpExtTCPSynRetrans 2',
  },
  {
    input: { synRetries: 2, linearTimeouts: 4 },
    observed: { retransmissions: 5, timeoutAt: 7 },
    how: 'kernel 6.18, 2026-12-04: likewise: ETIMEDOUT after 7.11 s, TcpExtTCPSynRetrans 5',
  },
  {
    input: { synRetries: 3, linearTimeouts: 4 },
    observed: { retransmissions: 7, timeoutAt: 19 },
    how: 'kernel 6.18, 2026-12-04: likewise: ETIMEDOUT after 19.34 s, TcpExtTCPSynRetrans 7',
  },
];

/** When a request whose handshake never completes leaves the server's SYN queue, s after its SYN. */
export const SYNACK_EXPIRY: Array<Observation<{ synackRetries: number }, { goneBy: number; presentAt: number }>> = [
  {
    input: { synackRetries: 1 },
    observed: { presentAt: 2.5, goneBy: 3.5 },
    how: 'kernel 6.18, 2026-12-02: test/model/kernel.test.ts: a client whose final ACK nft drops; `ss -n state syn-recv` on the server at 2.5 s and 3.5 s',
  },
  {
    input: { synackRetries: 2 },
    observed: { presentAt: 6.5, goneBy: 7.5 },
    how: 'kernel 6.18, 2026-12-02: test/model/kernel.test.ts, likewise at 6.5 s and 7.5 s',
  },
];

/** Held clients (final ACK dropped by a full accept queue, abort_on_overflow 0) reset after they sent data, s. */
export const HELD_RESET: Array<Observation<{ synackRetries: number }, number[]>> = [
  {
    input: { synackRetries: 2 },
    observed: [6.7, 13.3],
    how: 'kernel 6.18, 2026-12-02: overflow scenario with server tcp_synack_retries=2, accept rate 0, a 15 s watch: the held clients reset that long after the release, in two runs',
  },
];

/** TIME_WAIT on a client that closes first, through a narrow port range. */
export const TIME_WAIT: Array<
  Observation<
    { ports: number; durationMs: number; reuse: number; timestamps: number; reuseDelayMs: number; maxTwBuckets: number },
    { connections: number | { above: number }; timeWait?: number; eaddrnotavail: boolean }
  >
> = [
  {
    input: { ports: 100, durationMs: 3000, reuse: 0, timestamps: 1, reuseDelayMs: 1000, maxTwBuckets: 262144 },
    observed: { connections: 100, eaddrnotavail: true },
    how: 'kernel 6.18, 2026-12-02: timewait scenario, closer client (reuse 0, 2, or 1 without timestamps alike)',
  },
  {
    input: { ports: 100, durationMs: 3000, reuse: 1, timestamps: 1, reuseDelayMs: 1000, maxTwBuckets: 262144 },
    observed: { connections: 300, eaddrnotavail: true },
    how: 'kernel 6.18, 2026-12-02: timewait scenario, closer client: 100 connections per tcp_tw_reuse_delay, TWRecycled 200',
  },
  {
    input: { ports: 10, durationMs: 2500, reuse: 1, timestamps: 1, reuseDelayMs: 100, maxTwBuckets: 262144 },
    observed: { connections: 250, eaddrnotavail: true },
    how: 'kernel 6.18, 2026-12-02: timewait scenario, closer client, ip_local_port_range 40000 40009',
  },
  {
    input: { ports: 10, durationMs: 3000, reuse: 0, timestamps: 1, reuseDelayMs: 1000, maxTwBuckets: 5 },
    observed: { connections: { above: 5000 }, timeWait: 5, eaddrnotavail: false },
    how: 'kernel 6.18, 2026-12-02: timewait scenario, closer client, client tcp_max_tw_buckets 5: 5,858 connections, TCPTimeWaitOverflow for the rest',
  },
  {
    input: { ports: 10, durationMs: 3000, reuse: 0, timestamps: 1, reuseDelayMs: 1000, maxTwBuckets: 0 },
    observed: { connections: { above: 5000 }, timeWait: 0, eaddrnotavail: false },
    how: 'kernel 6.18, 2026-12-02: timewait scenario, closer client, client tcp_max_tw_buckets 0: no TIME_WAIT at all',
  },
];

/** Orphaned FIN-WAIT-2 sockets (peer never closes): s from 0.2 s after the FIN until none was left. */
export const ORPHAN_FIN_WAIT2: Array<Observation<{ finTimeoutSec: number }, number>> = [
  {
    input: { finTimeoutSec: 3 },
    observed: 3.3,
    how: 'kernel 6.18, 2026-12-02: timewait scenario with orphans 20 (a silent peer on the server host), netns; ss state fin-wait-2 polled every 200 ms',
  },
  { input: { finTimeoutSec: 6 }, observed: 6.1, how: 'kernel 6.18, 2026-12-02: likewise' },
];
