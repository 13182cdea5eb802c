// The packet capture of a point (`capture: true`): tcpdump in the loadgen host on the lab port,
// bounded by snap length, packet count and duration; its pcap goes into raw/<point>/. tshark's
// field output (on the machine) turns it into one handshake timeline per connection: each SYN,
// each SYN-ACK (a second one is a retransmission), the client's ACK, its first data, the
// server's first data, the first FIN and the first RST, each with its time (ms since the epoch,
// the sampler's clock).
import { lstatSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Host, Proc } from '../runtime/runtime.js';
import { waitForLine } from '../runtime/proc-wait.js';

export const CAPTURE_SNAPLEN = 128;
export const CAPTURE_PACKETS = 200_000;
export const CAPTURE_SECONDS = 900;
/** Connections kept whole in the point record; past it the summary alone. */
export const TIMELINES_IN_RECORD = 200;

export interface ConnTimeline {
  /** The client's side: "address:port". */
  client: string;
  /** tshark's stream index (a port used again is a new stream). */
  stream: number;
  /** Every SYN the client sent (the first, then its retransmissions). */
  syn: number[];
  /** Every SYN-ACK the server sent (more than one: retransmitted). */
  synAck: number[];
  /** The client's first ACK that is not a SYN (its side of the handshake done). */
  ack?: number;
  /** The client's first byte of data, and the server's. */
  data?: number;
  response?: number;
  fin?: { t: number; by: 'client' | 'server' };
  rst?: { t: number; by: 'client' | 'server' };
  /** Segments tshark marks as retransmitted (SYNs and SYN-ACKs aside). */
  retransmits: number;
}

export interface CaptureSummary {
  packets: number;
  /** As tcpdump counted them: captured, and dropped by the kernel (its buffer full). */
  captured: number | null;
  droppedByKernel: number | null;
  /** Packets the filter matched (tcpdump's "received by filter"): more than captured means some never reached the file. */
  receivedByFilter?: number | null;
  connections: number;
  synRetransmitted: number;
  synAckRetransmitted: number;
  handshakes: number;
  served: number;
  resetByServer: number;
  resetByClient: number;
  /** Connections past TIMELINES_IN_RECORD: in the summary and the pcap, not in the record. */
  notInRecord: number;
}

export interface CaptureResult {
  summary: CaptureSummary;
  timelines: ConnTimeline[];
}

/** tshark's fields, in this order, one packet a line (tab-separated). */
export const TSHARK_FIELDS = [
  'frame.time_epoch',
  'tcp.stream',
  'ip.src',
  'tcp.srcport',
  'ip.dst',
  'tcp.dstport',
  'tcp.flags',
  'tcp.len',
  'tcp.analysis.retransmission',
];

export const tsharkArgv = (pcap: string) => [
  '-r',
  pcap,
  '-n',
  '-Y',
  'tcp',
  '-T',
  'fields',
  '-E',
  'separator=/t',
  ...TSHARK_FIELDS.flatMap((f) => ['-e', f]),
];

/** tshark's field output as per-connection timelines; serverPort tells the server's side. */
export function parseTshark(text: string, serverPort: number): { packets: number; timelines: ConnTimeline[] } {
  const byStream = new Map<number, ConnTimeline>();
  let packets = 0;
  for (const line of text.split('\n')) {
    const f = line.split('\t');
    if (f.length < 8 || !/^\d/.test(f[0]!)) continue;
    packets++;
    const t = Math.round(Number(f[0]) * 1e6) / 1e3;
    const stream = Number(f[1]);
    const [src, sport, dst, dport] = [f[2]!, Number(f[3]), f[4]!, Number(f[5])];
    const flags = Number(f[6]); // "0x0012"
    const len = Number(f[7]);
    const retrans = (f[8] ?? '').trim() !== '';
    const fromServer = sport === serverPort && dport !== serverPort;
    const client = fromServer ? `${dst}:${dport}` : `${src}:${sport}`;
    let c = byStream.get(stream);
    if (!c) byStream.set(stream, (c = { client, stream, syn: [], synAck: [], retransmits: 0 }));
    const syn = (flags & 0x02) !== 0;
    const ack = (flags & 0x10) !== 0;
    const by = fromServer ? ('server' as const) : ('client' as const);
    if (syn && !ack && !fromServer) c.syn.push(t);
    else if (syn && ack && fromServer) c.synAck.push(t);
    else if (retrans) c.retransmits++;
    if (!syn && ack && !fromServer && c.ack === undefined && c.synAck.length) c.ack = t;
    if (len > 0 && !fromServer) c.data ??= t;
    if (len > 0 && fromServer) c.response ??= t;
    if (flags & 0x01) c.fin ??= { t, by };
    if (flags & 0x04) c.rst ??= { t, by };
  }
  const timelines = [...byStream.values()].sort((a, b) => (a.syn[0] ?? a.synAck[0] ?? 0) - (b.syn[0] ?? b.synAck[0] ?? 0) || a.stream - b.stream);
  return { packets, timelines };
}

export function summarizeCapture(
  packets: number,
  timelines: ConnTimeline[],
  counted: { captured: number | null; dropped: number | null; received: number | null },
): CaptureSummary {
  return {
    packets,
    captured: counted.captured,
    droppedByKernel: counted.dropped,
    receivedByFilter: counted.received,
    connections: timelines.length,
    synRetransmitted: timelines.filter((c) => c.syn.length > 1).length,
    synAckRetransmitted: timelines.filter((c) => c.synAck.length > 1).length,
    handshakes: timelines.filter((c) => c.ack !== undefined).length,
    served: timelines.filter((c) => c.response !== undefined).length,
    resetByServer: timelines.filter((c) => c.rst?.by === 'server').length,
    resetByClient: timelines.filter((c) => c.rst?.by === 'client').length,
    notInRecord: Math.max(0, timelines.length - TIMELINES_IN_RECORD),
  };
}

/** "12 packets captured", "12 packets received by filter" and "0 packets dropped by kernel", as tcpdump prints them when it stops. */
export function tcpdumpCounts(log: string): { captured: number | null; dropped: number | null; received: number | null } {
  const n = (re: RegExp) => {
    const m = re.exec(log);
    return m ? Number(m[1]) : null;
  };
  return {
    captured: n(/^(\d+) packets? captured/m),
    dropped: n(/^(\d+) packets? dropped by kernel/m),
    received: n(/^(\d+) packets? received by filter/m),
  };
}

/** Packets the capture lacks by tcpdump's own counts: dropped by the kernel, or matched and never written. */
export function captureLost(c: Pick<CaptureSummary, 'captured' | 'droppedByKernel' | 'receivedByFilter'>): number {
  return (c.droppedByKernel ?? 0) + Math.max(0, (c.receivedByFilter ?? 0) - (c.captured ?? 0));
}

export interface Capture {
  /** Stops tcpdump, moves the pcap to rawDir/capture.pcap, reads it with tshark. */
  stop(rawDir: string): Promise<{ result: CaptureResult | null; why?: string }>;
}

/** Why tshark cannot read the capture on this machine, or null. */
export async function tsharkUnavailable(): Promise<string | null> {
  const r = await execa('tshark', ['--version'], { reject: false });
  return r.exitCode === 0 ? null : 'tshark is missing on this machine (apt-get install tshark): the pcap is kept, without timelines';
}

/**
 * Starts tcpdump in the host on the lab port (the pcap in the point's log folder, made new).
 * Throws with one line when tcpdump cannot start there.
 */
export async function startCapture(host: Host, port: number, logDir: string): Promise<Capture> {
  const name = `${host.name}-capture.pcap`;
  const inHost = host.putFile(name, '');
  // -Z root: Debian's tcpdump would drop to its own user and could not write the file given to the host's user.
  // --immediate-mode: each packet is read as it comes. Without it, the packets of the last
  // second (the ring's block timeout) were still in the kernel's ring when tcpdump stopped, and
  // were lost: 1,412 captured of 1,657 matched, on an arrivals point whose last connects came
  // after its SYN retransmissions.
  const argv = ['timeout', '-s', 'INT', String(CAPTURE_SECONDS), 'tcpdump', '-i', 'any', '-n', '-U', '--immediate-mode', '-Z', 'root'];
  argv.push('-s', String(CAPTURE_SNAPLEN), '-c', String(CAPTURE_PACKETS), '-w', inHost, 'tcp', 'port', String(port));
  const proc: Proc = host.start(argv, 'tcpdump');
  try {
    await waitForLine(proc, /listening on/, 15_000, 'tcpdump');
  } catch (err) {
    await proc.stop('SIGKILL');
    const log = readFileSync(proc.log, 'utf8');
    const missing = /tcpdump: (not found|No such file)|executable file not found|exec: "?tcpdump/.test(log);
    throw new Error(
      missing
        ? `tcpdump is missing in ${host.name} (apt-get install tcpdump)`
        : /Couldn't change to/.test(log)
          ? `tcpdump in ${host.name} cannot set its user and groups (a user namespace denies setgroups; the rootless runtime has no capture)`
          : `tcpdump in ${host.name}: ${log.trim().split('\n').pop() ?? (err as Error).message}`,
    );
  }
  return {
    async stop(rawDir) {
      await proc.stop('SIGINT');
      const counted = tcpdumpCounts(readFileSync(proc.log, 'utf8'));
      const from = join(logDir, name);
      // Made by putFile above: a regular file, never a link, is moved (rename moves the entry itself).
      if (!lstatSync(from).isFile()) throw new Error(`${from}: not a regular file`);
      const pcap = join(rawDir, 'capture.pcap');
      renameSync(from, pcap);
      const why = await tsharkUnavailable();
      if (why) return { result: null, why };
      const r = await execa('tshark', tsharkArgv(pcap), { reject: false, maxBuffer: 512 * 1024 * 1024 });
      if (r.exitCode !== 0) return { result: null, why: `tshark could not read the capture: ${r.stderr.trim().split('\n').pop()}` };
      const { packets, timelines } = parseTshark(r.stdout, port);
      return { result: { summary: summarizeCapture(packets, timelines, counted), timelines: timelines.slice(0, TIMELINES_IN_RECORD) } };
    },
  };
}
