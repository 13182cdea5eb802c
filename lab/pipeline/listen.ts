// How the server really listens, read once it is up: its listening sockets on the port and each
// one's accept-queue limit. ss shows a listener's limit as its Send-Q, which the kernel set at
// listen() to min(the backlog the server passed, somaxconn). Most servers pass a backlog of their
// own (Python's http.server 5, a Node server 511, …) whatever the lab asked for: the kernel's
// rules are judged against what the server did, and the difference is a finding about the server.
import { acceptQueueLimit } from '../model/kernel.js';
import type { Listener } from '../observe/ss.js';

export type ListenMethod = 'listen() syscall' | 'server /stats' | 'ss Send-Q';

export interface ListenRecord {
  /**
   * How the backlog was found: the listen() syscall as bpftrace saw it (root, a host on this
   * machine's kernel), the tcplab reactor's /stats (it reports what it passed), else Send-Q alone.
   */
  method: ListenMethod;
  /** Every listening socket on the port (more than one: an SO_REUSEPORT group, or IPv4 and IPv6). */
  sockets: Array<{ local: string; sendQ: number }>;
  /** The accept-queue limit of the listener the lab's IPv4 clients reach; null when none listens. */
  limit: number | null;
  /** The backlog the server passed to listen(): exact from the server, or from Send-Q below somaxconn; at somaxconn only "at least". */
  backlog: { value: number; exact: boolean } | null;
  /** The limit the lab's settings give: min(server.backlog, somaxconn). */
  asked: number;
  /**
   * Whether the server listened with the lab's backlog; null when that cannot be told: Send-Q
   * at somaxconn, which the lab's backlog would give too (or no listener).
   */
  honoured: boolean | null;
  /** Why the listen() syscall, wanted for a server other than the reactor, did not give the backlog (Send-Q alone then). */
  syscallWhy?: string;
  /** Listening sockets on the reached socket's address and port: more than 1 is an SO_REUSEPORT group, each with a queue of its own. */
  group?: number;
  /** The TCP_DEFER_ACCEPT the server set on its listener, seconds (seen with the syscall; absent: none set). */
  deferAcceptSec?: number;
}

/** Addresses an IPv4 client's connection can land on (an IPv6 wildcard only when no IPv4 one). */
const IPV4_ANY = new Set(['0.0.0.0', '*']);
const IPV6_ANY = new Set(['[::]', '::', '[::ffff:0.0.0.0]']);

/**
 * What the listeners on `port` (from `ss -ltn` in the server host) say of how the server listens;
 * `reported`, the backlogs the server passed as seen by another method (the listen() calls on the
 * port, or the tcplab reactor's /stats), makes it exact: the one whose cap gives the reached
 * listener's Send-Q.
 */
export function listenOf(
  listeners: Listener[],
  port: number,
  address: string,
  somaxconn: number,
  backlog: number,
  reported?: { method: Exclude<ListenMethod, 'ss Send-Q'>; backlogs: number[]; why?: string; deferAcceptSec?: number },
): ListenRecord {
  const mine = listeners.filter((l) => l.port === port);
  const reached =
    mine.find((l) => l.local === address) ?? mine.find((l) => IPV4_ANY.has(l.local)) ?? mine.find((l) => IPV6_ANY.has(l.local)) ?? mine[0];
  const asked = acceptQueueLimit(backlog, somaxconn);
  const limit = reached ? reached.sendQ : null;
  const sockets = mine.map((l) => ({ local: l.local, sendQ: l.sendQ }));
  const n = reached ? mine.filter((l) => l.local === reached.local).length : 0;
  const seen = { ...(n > 1 ? { group: n } : {}), ...(reported?.deferAcceptSec ? { deferAcceptSec: reported.deferAcceptSec } : {}) };
  if (limit === null) return { method: 'ss Send-Q', sockets, limit, backlog: null, asked, honoured: null, ...seen };
  if (reported?.backlogs.length) {
    // The kernel takes a backlog above somaxconn (unsigned: a negative one too) as somaxconn; the last call that gives the Send-Q seen is the live one.
    const cap = (b: number) => (b < 0 || b > somaxconn ? somaxconn : b);
    const value = [...reported.backlogs].reverse().find((b) => cap(b) === limit) ?? reported.backlogs.at(-1)!;
    return { method: reported.method, sockets, limit, backlog: { value, exact: true }, asked, honoured: value === backlog, ...seen };
  }
  // Send-Q alone: the backlog exact below somaxconn; at it, "at least", and the lab's backlog, if that big, fits too.
  const exact = limit < somaxconn;
  const honoured = exact ? limit === asked : asked === limit ? null : false;
  const why = reported?.why ? { syscallWhy: reported.why } : {};
  return { method: 'ss Send-Q', sockets, limit, backlog: { value: limit, exact }, asked, honoured, ...why, ...seen };
}

/** "5", or "≥ 4096": the backlog the server passed to listen(), as far as Send-Q shows it. */
export const backlogText = (l: ListenRecord) => (l.backlog ? `${l.backlog.exact ? '' : '≥ '}${l.backlog.value}` : 'unknown');

/** How the number was found: "ss Send-Q 5", or "server /stats; Send-Q 128". */
const how = (l: ListenRecord) => (l.method === 'ss Send-Q' ? `ss Send-Q ${l.limit}` : `${l.method}; Send-Q ${l.limit}`);

/** The summary's line: the backlog the server passed, how it was found, its sockets, and whether it was the lab's. */
export function listenLine(l: ListenRecord, labBacklog: number): string {
  if (l.limit === null) return `no listener seen on the port (${l.method})`;
  const lab = l.honoured
    ? "the lab's"
    : l.honoured === null
      ? `the lab's ${labBacklog} or its own: Send-Q cannot tell`
      : `not the lab's ${labBacklog}`;
  const why = l.syscallWhy ? `; not from the listen() syscall: ${l.syscallWhy}` : '';
  const group = l.group ? ` (${l.group} of them an SO_REUSEPORT group, a queue each)` : '';
  const defer = l.deferAcceptSec ? `; TCP_DEFER_ACCEPT ${l.deferAcceptSec} s` : '';
  return `backlog ${backlogText(l)} (${how(l)}, ${lab}), ${l.sockets.length} listening socket(s)${group}${defer}${why}`;
}

/** What the server asked listen() for, when it was not the lab's backlog (null when it was, or when no listener was seen). */
export function listenFinding(l: ListenRecord, labBacklog: number): string | null {
  if (l.limit === null || l.honoured !== false) return null;
  const group = l.group ? `; an SO_REUSEPORT group of ${l.group} listening sockets on the port` : '';
  return `the server asked listen() for ${backlogText(l)} (${how(l)}); the lab's backlog ${labBacklog} was not used${group}`;
}

/** The report's table of how each point's server listened: its columns, and a point's cells. */
export const LISTEN_COLUMNS = [
  'point',
  'backlog passed to listen()',
  'found by',
  'Send-Q',
  'listening sockets',
  'TCP_DEFER_ACCEPT',
  "the lab's backlog used",
];
export function listenCells(l: ListenRecord): string[] {
  const used = l.honoured === null ? 'cannot tell (Send-Q at somaxconn)' : l.honoured ? 'yes' : 'no';
  const sockets = `${l.sockets.length}${l.group ? ` (an SO_REUSEPORT group of ${l.group})` : ''}`;
  return [backlogText(l), l.method, l.limit === null ? '–' : String(l.limit), sockets, l.deferAcceptSec ? `${l.deferAcceptSec} s` : 'no', used];
}
