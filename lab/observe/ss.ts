// Parsers for `ss -ltn` (listeners: Recv-Q is the accept queue, Send-Q its limit) and
// `ss -tanoi` (every TCP socket with its state and timer).

export interface Listener {
  local: string;
  port: number;
  /** Connections waiting in the accept queue. */
  recvQ: number;
  /** The accept queue's limit: min(backlog, somaxconn). */
  sendQ: number;
}

export const TCP_STATES = [
  'ESTAB',
  'SYN-SENT',
  'SYN-RECV',
  'FIN-WAIT-1',
  'FIN-WAIT-2',
  'TIME-WAIT',
  'CLOSE-WAIT',
  'LAST-ACK',
  'CLOSING',
  'LISTEN',
  'UNCONN',
  'CLOSE',
] as const;
export type TcpState = (typeof TCP_STATES)[number];

export interface Timer {
  /** on (retransmit), keepalive, timewait, persist, unknown */
  name: string;
  /** Time left, in seconds. */
  seconds: number;
  /** Retransmits / probes so far. */
  count: number;
}

export interface SocketRow {
  state: TcpState;
  recvQ: number;
  sendQ: number;
  local: string;
  peer: string;
  timer?: Timer;
  /** From the detail line (-i): retransmits so far, when shown as retrans:N/M. */
  retrans?: number;
}

/** Splits "127.0.0.1:7001", "[::1]:80" or "*:80" into address and port. */
export function splitAddress(a: string): { address: string; port: number } {
  const i = a.lastIndexOf(':');
  return { address: a.slice(0, i).replace(/^\[|\]$/g, ''), port: a.slice(i + 1) === '*' ? 0 : Number(a.slice(i + 1)) };
}

/**
 * ss prints a timer's time left as [Nmin][S(sec|.)][MMMms] (iproute2's
 * print_ms_timer), so "1.840ms" means 1.840 s, not 1.84 ms.
 */
export function parseTimerTime(s: string): number {
  // An expired timer prints as nothing ("timer:(on,,0)") or with a minus sign.
  const m = /^(-)?(?:(\d+)min)?(?:(\d+)(sec|\.))?(?:(\d+)ms)?$/.exec(s);
  if (!m || s === '-') throw new Error(`unrecognized ss timer value "${s}"`);
  return (m[1] ? -1 : 1) * (Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0) + Number(m[5] ?? 0) / 1000);
}

export function parseTimer(s: string): Timer {
  const m = /^timer:\(([^,]+),([^,]*),(\d+)\)$/.exec(s);
  if (!m) throw new Error(`unrecognized ss timer "${s}"`);
  return { name: m[1]!, seconds: parseTimerTime(m[2]!), count: Number(m[3]) };
}

function rows(output: string): string[] {
  return output.split('\n').filter((l) => l.trim() !== '' && !/^(State|Netid)\s/.test(l));
}

/** `ss -ltn` (or -ltnH). */
export function parseListeners(output: string): Listener[] {
  const out: Listener[] = [];
  for (const line of rows(output)) {
    const f = line.trim().split(/\s+/);
    if (f[0] !== 'LISTEN') continue;
    const { address, port } = splitAddress(f[3]!);
    out.push({ local: address, port, recvQ: Number(f[1]), sendQ: Number(f[2]) });
  }
  return out;
}

/** `ss -tanoi` (or any -tan variant; detail lines start with a tab). */
export function parseSockets(output: string): SocketRow[] {
  const out: SocketRow[] = [];
  for (const line of output.split('\n')) {
    if (line.trim() === '' || /^(State|Netid)\s/.test(line)) continue;
    if (/^\s/.test(line)) {
      const last = out[out.length - 1];
      const r = /\bretrans:\d+\/(\d+)/.exec(line);
      if (last && r) last.retrans = Number(r[1]);
      continue;
    }
    const f = line.trim().split(/\s+/);
    const state = f[0] as TcpState;
    if (!TCP_STATES.includes(state)) throw new Error(`unrecognized ss state "${f[0]}" in: ${line.trim()}`);
    const row: SocketRow = { state, recvQ: Number(f[1]), sendQ: Number(f[2]), local: f[3]!, peer: f[4]! };
    const t = f.slice(5).find((x) => x.startsWith('timer:('));
    if (t) row.timer = parseTimer(t);
    out.push(row);
  }
  return out;
}

export function countStates(sockets: SocketRow[]): Record<TcpState, number> {
  const counts = Object.fromEntries(TCP_STATES.map((s) => [s, 0])) as Record<TcpState, number>;
  for (const s of sockets) counts[s.state]++;
  return counts;
}

/**
 * The kernel's TCP state numbers (include/net/tcp_states.h) under ss's names, as
 * /proc/net/tcp (in hex) and sock_diag report them; 12 (NEW_SYN_RECV) is a request socket.
 */
export const KERNEL_STATES: Record<number, TcpState> = {
  1: 'ESTAB',
  2: 'SYN-SENT',
  3: 'SYN-RECV',
  4: 'FIN-WAIT-1',
  5: 'FIN-WAIT-2',
  6: 'TIME-WAIT',
  7: 'CLOSE',
  8: 'CLOSE-WAIT',
  9: 'LAST-ACK',
  10: 'LISTEN',
  11: 'CLOSING',
  12: 'SYN-RECV',
};

export interface ProcTcp {
  states: Record<TcpState, number>;
  /** Listening sockets: local port and accept-queue length (rx_queue of a LISTEN row is sk_ack_backlog). */
  listeners: Array<{ port: number; recvQ: number }>;
}

/**
 * /proc/net/tcp and /proc/net/tcp6 (what the reading process's namespace holds): sockets
 * per state (request sockets show as SYN-RECV, timewait ones as TIME-WAIT) and each
 * listener's accept queue. The queue's limit is not there: ss -ltn has it.
 * Read by the sampler: no process to start per sample.
 */
export function parseProcTcp(...files: string[]): ProcTcp {
  const states = Object.fromEntries(TCP_STATES.map((s) => [s, 0])) as Record<TcpState, number>;
  const listeners: ProcTcp['listeners'] = [];
  for (const text of files) {
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length < 5 || !f[0]!.endsWith(':')) continue; // the header, or an empty line
      const state = KERNEL_STATES[parseInt(f[3]!, 16)];
      if (!state) throw new Error(`unrecognized /proc/net/tcp state "${f[3]}" in: ${line.trim()}`);
      states[state]++;
      if (state === 'LISTEN') {
        const local = f[1]!;
        listeners.push({ port: parseInt(local.slice(local.lastIndexOf(':') + 1), 16), recvQ: parseInt(f[4]!.split(':')[1]!, 16) });
      }
    }
  }
  return { states, listeners };
}
