// How the server really listens, read once it is up: its listening sockets on the port and each
// one's accept-queue limit. ss shows a listener's limit as its Send-Q, which the kernel set at
// listen() to min(the backlog the server passed, somaxconn). Most servers pass a backlog of their
// own (Python's http.server 5, a Node server 511, …) whatever the lab asked for: the kernel's
// rules are judged against what the server did, and the difference is a finding about the server.
import { acceptQueueLimit } from './model/kernel.js';
import type { Listener } from './observe/ss.js';

export interface ListenRecord {
  /** How the numbers were found. */
  method: 'ss Send-Q';
  /** Every listening socket on the port (more than one: an SO_REUSEPORT group, or IPv4 and IPv6). */
  sockets: Array<{ local: string; sendQ: number }>;
  /** The accept-queue limit of the listener the lab's IPv4 clients reach; null when none listens. */
  limit: number | null;
  /** The backlog the server passed to listen(): exact below somaxconn; at somaxconn only "at least". */
  backlog: { value: number; exact: boolean } | null;
  /** The limit the lab's settings give: min(server.backlog, somaxconn). */
  asked: number;
  /** Whether the server listened with the lab's backlog (its limit is the one asked for). */
  honoured: boolean | null;
}

/** Addresses an IPv4 client's connection can land on (an IPv6 wildcard only when no IPv4 one). */
const IPV4_ANY = new Set(['0.0.0.0', '*']);
const IPV6_ANY = new Set(['[::]', '::', '[::ffff:0.0.0.0]']);

/** What the listeners on `port` (from `ss -ltn` in the server host) say of how the server listens. */
export function listenOf(listeners: Listener[], port: number, address: string, somaxconn: number, backlog: number): ListenRecord {
  const mine = listeners.filter((l) => l.port === port);
  const reached =
    mine.find((l) => l.local === address) ?? mine.find((l) => IPV4_ANY.has(l.local)) ?? mine.find((l) => IPV6_ANY.has(l.local)) ?? mine[0];
  const asked = acceptQueueLimit(backlog, somaxconn);
  const limit = reached ? reached.sendQ : null;
  return {
    method: 'ss Send-Q',
    sockets: mine.map((l) => ({ local: l.local, sendQ: l.sendQ })),
    limit,
    backlog: limit === null ? null : { value: limit, exact: limit < somaxconn },
    asked,
    honoured: limit === null ? null : limit === asked,
  };
}

/** "5", or "≥ 4096": the backlog the server passed to listen(), as far as Send-Q shows it. */
export const backlogText = (l: ListenRecord) => (l.backlog ? `${l.backlog.exact ? '' : '≥ '}${l.backlog.value}` : 'unknown');

/** The summary's line: the backlog the server passed, how it was found, its sockets, and whether it was the lab's. */
export function listenLine(l: ListenRecord, labBacklog: number): string {
  if (l.limit === null) return `no listener seen on the port (${l.method})`;
  const lab = l.honoured ? "the lab's" : `not the lab's ${labBacklog}`;
  return `backlog ${backlogText(l)} (${l.method} ${l.limit}, ${lab}), ${l.sockets.length} listening socket(s)`;
}

/** One line for the summary and the report: what the server asked for, when it was not the lab's. */
export function listenFinding(l: ListenRecord, labBacklog: number): string | null {
  if (l.limit === null) return null;
  const group = l.sockets.length > 1 ? `; ${l.sockets.length} listening sockets on the port` : '';
  if (l.honoured) return group ? `the server listens with the lab's backlog${group}` : null;
  return `the server asked listen() for ${backlogText(l)} (${l.method} ${l.limit}); the lab's backlog ${labBacklog} was not used${group}`;
}
