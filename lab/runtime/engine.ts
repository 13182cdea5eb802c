// What the docker and swarm runtimes share: the label every object of a lab carries, a lab host
// in a running container (DockerHost: exec, files, processes, its sysctls read back), and the
// engine's errors and filters. docker.ts and swarm.ts build on it; neither reaches into the other.
import { closeSync, constants, fchownSync, openSync, writeSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { NAME_RE } from '../../core/fields.js';
import { verifySettings, type ExecOptions, type ExecResult } from '../../sysctl/apply.js';
import type { Host, HostSpec, LabSummary, Proc } from './runtime.js';
export const LABEL = 'tcplab.run';
export const LOGS = '/lab/logs';

export class DockerHost implements Host {
  readonly label: string;
  constructor(
    readonly name: string,
    readonly role: HostSpec['role'],
    readonly address: string,
    private readonly container: Docker.Container,
    private readonly logDir: string,
    /** The uid:gid the container's processes run as (the server image's user is not root). */
    private readonly owner: { uid: number; gid: number },
    readonly ownServer?: Proc,
    /** The swarm node it runs on (the swarm runtime). */
    readonly placedOn?: string,
  ) {
    this.label = name;
  }

  node(script: string): string[] {
    return ['node', `/app/${script}`];
  }

  file(rel: string): string {
    return `/app/${rel}`;
  }

  async exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    // coreutils `timeout` inside the container: an exec cannot be killed through the API.
    const cmd = opts.timeoutMs ? ['timeout', '-k', '2', String(Math.ceil(opts.timeoutMs / 1000)), ...argv] : argv;
    const ex = await this.container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
    const stream = await ex.start({ hijack: true, stdin: false });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const o = new PassThrough().on('data', (b: Buffer) => out.push(b));
    const e = new PassThrough().on('data', (b: Buffer) => err.push(b));
    this.container.modem.demuxStream(stream, o, e);
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', reject);
    });
    stream.destroy(); // the hijacked connection would otherwise stay open and keep Node alive
    const info = await ex.inspect();
    let stdout = Buffer.concat(out).toString();
    let stderr = Buffer.concat(err).toString();
    let exitCode = info.ExitCode ?? -1;
    // runc reports a program it cannot start as exit 126 and an "OCI runtime exec failed …
    // executable file not found" line on stdout: say 127 like a shell, the message on stderr.
    if ((exitCode === 126 || exitCode === 127) && /^OCI runtime exec failed: .*(executable file not found|no such file or directory)/.test(stdout)) {
      stderr = stdout.trim();
      stdout = '';
      exitCode = 127;
    }
    return { stdout, stderr, exitCode, timedOut: Boolean(opts.timeoutMs) && exitCode === 124 };
  }

  readonly scratchDir = '/tmp';

  putFile(name: string, text: string): string {
    if (!NAME_RE.test(name.replace(/\.[a-z]+$/, ''))) throw new Error(`file name must match ${NAME_RE} (and an extension), got "${name}"`);
    // The log folder is bind-mounted: a new file, never through a link, given to the container's user.
    const fd = openSync(resolvePath(this.logDir, name), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    try {
      writeSync(fd, text);
      fchownSync(fd, this.owner.uid, this.owner.gid);
    } finally {
      closeSync(fd);
    }
    return `${LOGS}/${name}`;
  }

  start(argv: string[], label: string): Proc {
    if (!NAME_RE.test(label)) throw new Error(`process label must match ${NAME_RE}, got "${label}"`);
    const file = `${this.name}-${label}.log`;
    const log = resolvePath(this.logDir, file);
    // The log folder is bind-mounted into the containers, so anything may stand at this name:
    // create the file new (O_EXCL) and never follow a link (O_NOFOLLOW), then give it to the
    // container's user by ownership (no world-writable file or folder).
    const fd = openSync(log, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    try {
      fchownSync(fd, this.owner.uid, this.owner.gid);
    } finally {
      closeSync(fd);
    }
    const pidFile = `/tmp/tcplab-${label}.pid`;
    // A constant script; the label, log and argv are its arguments, never spliced into it.
    const script = 'pidfile=$1; log=$2; shift 2; echo $$ > "$pidfile"; exec "$@" >>"$log" 2>&1';
    const started = this.container
      .exec({ Cmd: ['sh', '-c', script, 'sh', pidFile, `${LOGS}/${file}`, ...argv], AttachStdout: false, AttachStderr: false })
      .then(async (ex) => {
        // The engine answers a detached start with a stream that holds a socket open: close it.
        const res: unknown = await ex.start({ Detach: true });
        const stream = typeof res === 'object' && res !== null ? (res as { destroy?: () => void; resume?: () => void }) : undefined;
        stream?.resume?.();
        stream?.destroy?.();
        return ex;
      })
      // The engine may be gone (stopped under the lab): the process then never ran, and
      // nothing awaits this promise to see its rejection; exited says null.
      .catch(() => null);
    let polling = true;
    const exited = started.then(async (ex) => {
      while (polling && ex) {
        const i = await ex.inspect().catch(() => null);
        if (!i || !i.Running) return i?.ExitCode ?? null;
        await new Promise((r) => setTimeout(r, 50));
      }
      return null;
    });
    const signal = async (sig: string) => {
      if (!(await started)) return;
      await this.exec(['sh', '-c', 'kill -s "$1" "$(cat "$2")" 2>/dev/null || true', 'sh', sig, pidFile]).catch(() => {});
    };
    return {
      pid: 0,
      log,
      exited,
      async stop(sig: NodeJS.Signals = 'SIGTERM') {
        await signal(sig.replace(/^SIG/, ''));
        const t = setTimeout(() => void signal('KILL'), 3000);
        await exited;
        clearTimeout(t);
      },
      release() {
        polling = false;
      },
    };
  }
}

/**
 * A lab host in a running container: which user its processes run as (an exec runs as the
 * image's user: the files made for them are given to it), and its sysctls, set by the engine
 * at creation, read back from inside (a mismatch is an error).
 */
export async function hostIn(
  c: Docker.Container,
  h: HostSpec,
  address: string,
  logDir: string,
  more: { ownServer?: Proc; placedOn?: string } = {},
): Promise<DockerHost> {
  const id = await new DockerHost(h.name, h.role, address, c, logDir, { uid: 0, gid: 0 }).exec(['sh', '-c', 'id -u; id -g'], { timeoutMs: 10_000 });
  const [uid, gid] = id.stdout.trim().split('\n').map(Number);
  if (id.exitCode !== 0 || !Number.isInteger(uid) || !Number.isInteger(gid))
    throw new Error(`${h.name}: cannot tell which user its processes run as: ${id.stderr.trim()}`);
  const host = new DockerHost(h.name, h.role, address, c, logDir, { uid: uid!, gid: gid! }, more.ownServer, more.placedOn);
  await verifySettings(host, h.sysctls);
  return host;
}

/** The engine's filter for one lab's objects (by run id), or every lab's. */
export const labelFilter = (runId?: string) => ({ label: [runId === undefined ? LABEL : `${LABEL}=${runId}`] });

/** Labs of which only a labelled network of this driver is left (a crash between its creation and the first host). */
export async function addNetworkOnlyLabs(
  docker: Docker,
  driver: 'bridge' | 'overlay',
  runtime: string,
  labs: Map<string, LabSummary>,
): Promise<void> {
  for (const n of await docker.listNetworks({ filters: { label: [LABEL], driver: [driver] } })) {
    const runId = n.Labels?.[LABEL];
    if (runId && !labs.has(runId)) labs.set(runId, { runId, runtime, hosts: [] });
  }
}

/** The HTTP status of an Engine API error (dockerode sets statusCode), or null. */
/** A catch for an engine removal: gone already (404) counts as removed; anything else is named in `left` with the engine's reason. */
export const removalFailed =
  (left: string[], what: string) =>
  (err: unknown): void => {
    if (engineStatus(err) !== 404) left.push(`${what} (${engineMessage(err)})`);
  };

export function engineStatus(err: unknown): number | null {
  const s = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : null;
}

/** The engine's own message (its JSON body), without dockerode's prefix. */
export function engineMessage(err: unknown): string {
  const j = (err as { json?: { message?: unknown } } | null)?.json;
  return typeof j?.message === 'string' ? j.message : ((err as Error).message.split('\n')[0] ?? '');
}
