// The control API: a small node:http server on its own port (not the hot path).
//   GET  /healthz       200 {"ok":true}
//   GET  /stats         200 the reactor's stats (each thread with its context switches from
//                       /proc/self/task), this process's threads, RSS and CPU time (JSON)
//   POST /pause         stop accepting; the listen queue fills
//   POST /resume        accept again
//   POST /accept-rate   body {"perSecond": n} or ?perSecond=n; 0 = unlimited
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { Server } from '../native/index.js';
import { forksChildren } from '../core/fields.js';
import { childPids, procCpu, procPssKb, procStatus, sumProcesses } from './proc.js';

const MAX_BODY = 4096;

/** This process's CPU time so far, in seconds (the reactor's threads included). */
export function processCpu(): { userSec: number; systemSec: number } {
  const c = process.cpuUsage();
  return { userSec: c.user / 1e6, systemSec: c.system / 1e6 };
}

/**
 * This process's threads and RSS (/proc/self/status) and its context switches over all its
 * threads, those that ended included (getrusage RUSAGE_SELF: the status file counts only the
 * main thread's).
 */
function wholeProcess() {
  const st = procStatus('/proc/self/status')!;
  const ru = process.resourceUsage();
  return {
    ...st,
    pssKb: procPssKb('self') ?? st.rssKb,
    voluntaryCtxSwitches: ru.voluntaryContextSwitches,
    involuntaryCtxSwitches: ru.involuntaryContextSwitches,
  };
}

/** What a design's child processes add up to: how many run now, their RSS and context switches. */
export interface ChildrenStatus {
  processes: number;
  rssKb: number;
  /** Their proportional set size: pages shared with this process (copy-on-write after fork) split, not counted in each. */
  pssKb: number;
  voluntaryCtxSwitches: number;
  involuntaryCtxSwitches: number;
}

/**
 * The reactor's stats, each thread with its context switches, and the process's status and
 * CPU time. The children of fork, prefork and reactor-procs are processes of their own: their
 * CPU is added to this one's (a live child's is in neither process.cpuUsage() nor the
 * children's rusage; an exited child's is in the latter once reaped), and `children` sums them.
 */
export function fullStats(server: Server) {
  const s = server.stats();
  const cpu = processCpu();
  let children: ChildrenStatus | undefined;
  if (forksChildren(s.model)) {
    const self = procCpu('self');
    if (self) {
      cpu.userSec += self.children.userSec;
      cpu.systemSec += self.children.systemSec;
    }
    // A live child's own CPU (its children, if any, are not this design's).
    const kids = sumProcesses(childPids());
    cpu.userSec += kids.cpu.userSec;
    cpu.systemSec += kids.cpu.systemSec;
    const { processes, rssKb, pssKb, voluntaryCtxSwitches, involuntaryCtxSwitches } = kids;
    children = { processes, rssKb, pssKb, voluntaryCtxSwitches, involuntaryCtxSwitches };
  }
  // A thread's context switches; a child of prefork or reactor-procs is a process of its own (/proc/<pid>).
  const switchesOf = (tid: number) => {
    const t = procStatus(`/proc/self/task/${tid}/status`) ?? procStatus(`/proc/${tid}/status`);
    return t ? { voluntaryCtxSwitches: t.voluntaryCtxSwitches, involuntaryCtxSwitches: t.involuntaryCtxSwitches } : null;
  };
  return {
    ...s,
    perThread: s.perThread.map((t) => ({ ...t, ...(t.tid > 0 ? switchesOf(t.tid) : null) })),
    process: wholeProcess(),
    ...(children ? { children } : {}),
    cpu,
  };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error(`body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Parses the accept rate from ?perSecond= or a JSON body; returns an error message or the number. */
export function parseAcceptRate(query: URLSearchParams, body: string): number | string {
  let raw: unknown = query.get('perSecond');
  if (raw === null) {
    if (body.trim() === '') return 'perSecond is required: POST /accept-rate?perSecond=N or a JSON body {"perSecond": N}';
    try {
      raw = (JSON.parse(body) as { perSecond?: unknown }).perSecond;
    } catch {
      return 'body must be JSON like {"perSecond": 100}';
    }
  }
  const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 1e9) {
    return `perSecond must be an integer from 0 to 1000000000 (0: unlimited), got ${JSON.stringify(raw)}`;
  }
  return n;
}

export function createControlServer(server: Server): HttpServer {
  const routes: Record<string, { method: string; run: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void }> = {
    '/healthz': { method: 'GET', run: (_q, res) => send(res, 200, { ok: true }) },
    '/stats': { method: 'GET', run: (_q, res) => send(res, 200, fullStats(server)) },
    '/pause': {
      method: 'POST',
      run: (_q, res) => {
        server.pause();
        send(res, 200, { paused: true });
      },
    },
    '/resume': {
      method: 'POST',
      run: (_q, res) => {
        server.resume();
        send(res, 200, { paused: false });
      },
    },
    '/accept-rate': {
      method: 'POST',
      run: async (req, res, url) => {
        const rate = parseAcceptRate(url.searchParams, await readBody(req));
        if (typeof rate === 'string') return send(res, 400, { error: rate });
        server.setAcceptRate(rate);
        send(res, 200, { acceptRate: rate });
      },
    },
  };
  const srv = createServer((req, res) => {
    // Any request target, whatever its shape, gets an answer and leaves the server serving.
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://control');
    } catch {
      return send(res, 400, { error: `not a request target: ${JSON.stringify((req.url ?? '').slice(0, 200))}` });
    }
    const route = Object.hasOwn(routes, url.pathname) ? routes[url.pathname] : undefined;
    if (!route) return send(res, 404, { error: `no such endpoint ${url.pathname}; try ${Object.keys(routes).join(', ')}` });
    if (req.method !== route.method) {
      return send(res, 405, { error: `${url.pathname} takes ${route.method}` }, { allow: route.method });
    }
    Promise.resolve()
      .then(() => route.run(req, res, url))
      .catch((err: Error) => {
        if (!res.headersSent) send(res, 400, { error: err.message });
        else res.destroy();
      });
  });
  // A client that sends what node:http cannot parse gets a 400 and a close, not a crash.
  srv.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    else socket.destroy();
  });
  return srv;
}
