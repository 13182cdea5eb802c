// The backlog a server really passed to listen(), read from the syscall itself: bpftrace on
// the machine, on the tracepoint syscalls:sys_enter_listen, keeping the calls whose socket is
// bound to the lab's port (the socket found from the call's fd in the calling task's file
// table). Each call is kept with the network namespace it was made in, so it is started before
// the lab's hosts exist (a server from the user's image listens as its container starts) and
// the calls of the server host are picked once its namespace is known. Machine-wide and bounded:
// only calls on that port are printed, at most CAP of them. The same watch keeps each
// setsockopt(TCP_DEFER_ACCEPT) (Apache sets 30 s after listen(); Python's and many servers set
// it before bind(), when the socket has no port yet): each call names its socket (the kernel's
// struct sock), and a listener's deferral is the last one set on the socket it listened with. A
// listener that defers accept drops a final ACK that carries no data.
import { closeSync, openSync, readSync, fstatSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnBpftrace, tracerUnavailable, type Bpftrace } from './tracer.js';

export interface ListenCall {
  pid: number;
  /** The backlog argument as passed (the kernel caps it at somaxconn, and takes a negative one as somaxconn). */
  backlog: number;
  /** The network namespace inode of the calling task. */
  netns: number;
  /** The socket (its struct sock's address, as text): what joins a listener to its setsockopt calls. */
  sk: string;
}

/** setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, seconds) on a socket bound to the port. */
export interface DeferCall {
  pid: number;
  seconds: number;
  netns: number;
  sk: string;
}

/** The TCP_DEFER_ACCEPT of the sockets that listened (the last set on each, s); undefined when none is set (0 or less turns it off). */
export function deferOf(listens: ListenCall[], defers: DeferCall[]): number | undefined {
  const sks = new Set(listens.map((l) => l.sk));
  const last = defers.filter((d) => sks.has(d.sk)).at(-1)?.seconds;
  return last !== undefined && last > 0 ? last : undefined;
}

const CAP = 1000;

/** The bpftrace program: numbers only (the port, the cap). */
export function listenScript(port: number): string {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`listenScript: port ${port}`);
  return `BEGIN { printf("{\\"k\\":\\"ready\\"}\\n"); @n = 0; }
tracepoint:syscalls:sys_enter_listen {
  $f = *(curtask->files->fdt->fd + args->fd);
  $s = (struct socket *)$f->private_data;
  if ($s->sk->__sk_common.skc_num == ${port} && @n < ${CAP}) {
    @n = @n + 1;
    printf("{\\"k\\":\\"listen\\",\\"pid\\":%d,\\"backlog\\":%d,\\"netns\\":%u,\\"sk\\":\\"%lu\\"}\\n", pid, args->backlog, curtask->nsproxy->net_ns->ns.inum, (uint64)$s->sk);
  }
}
tracepoint:syscalls:sys_enter_setsockopt /args->level == 6 && args->optname == 9/ {
  $f = *(curtask->files->fdt->fd + args->fd);
  $s = (struct socket *)$f->private_data;
  if (@n < ${CAP}) {
    @n = @n + 1;
    printf("{\\"k\\":\\"defer\\",\\"pid\\":%d,\\"seconds\\":%d,\\"netns\\":%u,\\"sk\\":\\"%lu\\"}\\n", pid, *(int32 *)uptr(args->optval), curtask->nsproxy->net_ns->ns.inum, (uint64)$s->sk);
  }
}
END { clear(@n); }`;
}

/** The calls in bpftrace's output: listen() and setsockopt(TCP_DEFER_ACCEPT) (other lines are left out). */
export function parseWatch(text: string): { listens: ListenCall[]; defers: DeferCall[] } {
  const out: { listens: ListenCall[]; defers: DeferCall[] } = { listens: [], defers: [] };
  for (const line of text.split('\n')) {
    if (line.startsWith('{"k":"listen"')) {
      const e = JSON.parse(line) as ListenCall;
      out.listens.push({ pid: e.pid, backlog: e.backlog, netns: e.netns, sk: e.sk });
    } else if (line.startsWith('{"k":"defer"')) {
      const e = JSON.parse(line) as DeferCall;
      out.defers.push({ pid: e.pid, seconds: e.seconds, netns: e.netns, sk: e.sk });
    }
  }
  return out;
}

export interface ListenWatch {
  /**
   * The calls made so far (bpftrace stops). With `until`, first up to `graceMs` for a call the
   * caller knows was made to reach the output (bpftrace prints an event after the kernel
   * emits it, not at once).
   */
  stop(until?: (calls: ListenCall[]) => boolean, graceMs?: number): Promise<{ listens: ListenCall[]; defers: DeferCall[] }>;
}

/** Starts the watch of listen() on `port`, its output in `file`; where the tracer cannot run, why. */
export async function watchListenCalls(port: number, file: string): Promise<ListenWatch | { unavailable: string }> {
  const why = await tracerUnavailable();
  if (why) return { unavailable: why };
  let bt: Bpftrace;
  try {
    bt = await spawnBpftrace(listenScript(port), file);
  } catch (e) {
    return { unavailable: (e as Error).message };
  }
  return {
    async stop(until, graceMs = 1000) {
      for (const end = Date.now() + graceMs; until && Date.now() < end; await new Promise((r) => setTimeout(r, 25)))
        if (until(parseWatch(readFileSync(file, 'utf8')).listens)) break;
      return parseWatch((await bt.stop()).text);
    },
  };
}

/** The text bpftrace appended to file from byte `from` on. */
function readFrom(file: string, from: number): string {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(Math.max(0, size - from));
    readSync(fd, buf, 0, buf.length, from);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** How long a shared watch's output stays unchanged before a point takes its calls (bpftrace prints an event within milliseconds of it). */
const QUIET_MS = 200;

const sizeOf = (file: string) => {
  const fd = openSync(file, 'r');
  try {
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
};

/**
 * One watch per port for a whole sweep: bpftrace attaches once (1.2 s of a point here, most of it
 * its start-up), and each point reads the calls made from its own start on. Its output is
 * logs/listen-calls.<port>.<epoch ms>.trace in the run folder; each point's slice goes to the
 * point's own log too. Calls are told apart by network namespace (every point's server host has
 * its own), as with a watch per point.
 */
export class ListenWatchPool {
  private readonly watches = new Map<number, Promise<{ file: string; watch: ListenWatch } | { unavailable: string }>>();

  constructor(private readonly logDir: string) {}

  /** A point's watch of listen() on port: the calls from now on; stop() leaves the shared watch running. */
  async begin(port: number, pointFile: string): Promise<ListenWatch | { unavailable: string }> {
    let shared = this.watches.get(port);
    if (!shared) {
      const file = join(this.logDir, `listen-calls.${port}.${Date.now()}.trace`);
      shared = watchListenCalls(port, file).then((w) => ('unavailable' in w ? w : { file, watch: w }));
      this.watches.set(port, shared);
    }
    const w = await shared;
    if ('unavailable' in w) return w;
    const from = sizeOf(w.file);
    return {
      async stop(until, graceMs = 1000) {
        for (const end = Date.now() + graceMs; until && Date.now() < end; await new Promise((r) => setTimeout(r, 25)))
          if (until(parseWatch(readFrom(w.file, from)).listens)) break;
        // bpftrace keeps running: the calls made just before (Apache's TCP_DEFER_ACCEPT right
        // after its listen()) are in once its output has been still for QUIET_MS.
        for (let size = sizeOf(w.file), still = Date.now(); Date.now() - still < QUIET_MS; await new Promise((r) => setTimeout(r, 25))) {
          const now = sizeOf(w.file);
          if (now !== size) [size, still] = [now, Date.now()];
        }
        const text = readFrom(w.file, from);
        writeFileSync(pointFile, text, { flag: 'wx' });
        return parseWatch(text);
      },
    };
  }

  /** Every shared watch stops (bpftrace detaches). */
  async close(): Promise<void> {
    const all = [...this.watches.values()];
    this.watches.clear();
    await Promise.all(
      all.map(async (p) => {
        const w = await p.catch(() => null);
        if (w && 'watch' in w) await w.watch.stop();
      }),
    );
  }
}
