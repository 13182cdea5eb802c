// Typed entry point to the native reactor addon (build/Release/tcplab_native.node).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** How the server spreads work over threads (native/src/server.h); the lists and ranges are core/fields.ts's. */
import type { Io, Model, Share, Trigger, Work } from '../core/fields.js';
export type { Io, Model, Share, Trigger, Work };

export interface ServerOptions {
  /** IPv4 or IPv6 address to bind. Default "0.0.0.0". */
  host?: string;
  /** 0..65535; 0 picks an ephemeral port. Default 0. */
  port?: number;
  /** Passed to listen() exactly (any int32); the kernel clamps it to somaxconn. Default 511. */
  backlog?: number;
  /** Default "single". */
  model?: Model;
  /**
   * single, iterative, thread: must be 1. reuseport: N loops, each with its own listener.
   * acceptor: N I/O loops plus one acceptor thread. workers: N workers plus one reactor.
   * prethread: N threads blocking on the one port.
   * 1..256, default 1.
   */
  threads?: number;
  /** Default "edge" (the reactor models on epoll). */
  trigger?: Trigger;
  /**
   * The loops' I/O: "epoll" (readiness, default) or "io_uring" (completions: multishot accept,
   * multishot recv into provided buffers, one io_uring_enter per iteration; models single and
   * reuseport). Where the kernel or a seccomp filter refuses rings, listen() rejects with
   * syscall "io_uring_setup" and a message naming the cause.
   */
  io?: Io;
  /**
   * io: "io_uring" only: how long, µs, an io_uring_enter may gather completions once one has
   * come (the kernel's minimum wait, Linux 6.12+; listen() rejects with syscall "io_uring_setup"
   * on a kernel without it). Fewer enters per request, each answer up to this much later.
   * 0..10000, default 0 (each enter returns at the first completion).
   */
  uringBatchUs?: number;
  /** prethread: how the N waiters share the port (native/src/blocking.h). Default "accept". */
  share?: Share;
  /** Simulated work per request, µs, done by the thread that answers it before it answers. 0..1000000, default 0. */
  workUs?: number;
  /** "cpu" (a spin on the thread's CPU clock, default) or "sleep". */
  work?: Work;
  /** Close a connection idle this long; 0 never. 0..86400000, default 60000. */
  idleTimeoutMs?: number;
  /** SO_REUSEPORT on the listener (always on for model "reuseport"). Default false. */
  reusePort?: boolean;
  /** A request's header block above this gets 431. 256..1048576, default 8192. */
  maxHeaderBytes?: number;
  /** A request whose Content-Length is above this gets 413. 0..2^40, default 1048576. */
  maxBodyBytes?: number;
  /** A request head not whole this long after its first byte gets 408 and a close; 0 never. Default 10000. */
  headerTimeoutMs?: number;
  /** A body not whole this long after its head gets 408 and a close; 0 never. Default 30000. */
  bodyTimeoutMs?: number;
  /** Connections open at once over all threads; more are closed at once. 0: no cap. Default 65536. */
  maxConnections?: number;
}

export interface Counters {
  accepted: number;
  closed: number;
  active: number;
  requests: number;
  bytesIn: number;
  bytesOut: number;
  badRequests: number;
  headersTooLarge: number;
  /** 413: a Content-Length above maxBodyBytes. */
  bodyTooLarge: number;
  notImplemented: number;
  versionNotSupported: number;
  idleTimeouts: number;
  headerTimeouts: number;
  bodyTimeouts: number;
  /** Connections closed at once because maxConnections were open. */
  overCap: number;
  emfileEvents: number;
  /** Blocking designs: waits for the listener that returned with something to do. */
  wakeups: number;
  /** Of them, an accept() that found the queue empty (another waiter took the connection). */
  futileWakeups: number;
  /** Model thread: connection threads started, and running now; model fork: connection processes. */
  connThreadsSpawned: number;
  connThreadsLive: number;
  acceptErrors: Record<'EMFILE' | 'ENFILE' | 'ENOBUFS' | 'ENOMEM' | 'ECONNABORTED' | 'EPERM' | 'EPROTO' | 'other', number>;
}

export interface ServerStats {
  model: Model;
  threads: number;
  trigger: Trigger;
  io: Io;
  share: Share;
  backlog: number;
  workUs: number;
  work: Work;
  state: 'new' | 'listening' | 'closing' | 'closed';
  paused: boolean;
  acceptRate: number;
  /** A line for each loop of this process that stopped on an error, e.g. "tcplab-loop0 stopped: epoll_wait: Bad file descriptor". */
  failures: string[];
  total: Counters;
  /**
   * tid: the thread's id (0 before it started, and for the shared "conns" entry of models thread and fork):
   * /proc/self/task/<tid>; for prefork and reactor-procs, a child process's pid (/proc/<pid>).
   */
  perThread: Array<Counters & { role: string; tid: number }>;
}

export interface Server {
  /** Binds, listens and starts the threads. Rejects with an Error whose `code` is the errno name. */
  listen(): Promise<{ port: number }>;
  /** Stop calling accept(); the listener stays open and its queue fills. */
  pause(): void;
  resume(): void;
  /** Accepts per second over all accepting threads; 0 = unlimited. */
  setAcceptRate(perSecond: number): void;
  stats(): ServerStats;
  /** stats().failures alone, without the counters: cheap enough to poll. */
  failures(): string[];
  /** Stops and joins every thread and closes every fd. Idempotent. */
  close(): Promise<void>;
}

export interface ServerConstructor {
  new (options?: ServerOptions): Server;
}

function findAddon(): string {
  // Works from the sources (native/index.ts) and from the build (dist/native/index.js).
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'build', 'Release', 'tcplab_native.node');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('tcplab: the native addon is not built (build/Release/tcplab_native.node); run `npm install` or `npm run build:native`');
}

const require = createRequire(import.meta.url);
export interface SockDiag {
  /** Sockets per TCP state, keyed by the kernel's state number (1 ESTABLISHED … 10 LISTEN, 12 NEW_SYN_RECV). */
  states: Record<number, number>;
  listeners: Array<{ port: number; recvQ: number; sendQ: number }>;
}

const addon = require(findAddon()) as { Server: ServerConstructor; napiVersion: number; ioBackends: Io[]; noUringReason: string; sockDiag(all: boolean): SockDiag };

export const Server: ServerConstructor = addon.Server;
/**
 * The TCP sockets of this process's network namespace over NETLINK_SOCK_DIAG (as `ss`
 * reads them), with no process started. all=false: listeners only (the kernel walks just
 * the listening hash, microseconds); all=true: every state (it walks the whole established
 * hash: milliseconds on a large machine, even with no sockets). Throws on netlink errors.
 */
export const sockDiag: (all: boolean) => SockDiag = addon.sockDiag;
export const napiVersion: number = addon.napiVersion;
/**
 * The I/O backends this build of the addon has: always "epoll"; "io_uring" where liburing-dev
 * was there when it was built (CMakeLists.txt prints one line when it was not).
 */
export const ioBackends: readonly Io[] = addon.ioBackends;
/** Why this build has no io_uring backend and how to add it (the addon's own words). */
export const NO_URING: string = addon.noUringReason;
