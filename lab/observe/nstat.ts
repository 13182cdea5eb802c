// Parser for `nstat -az` (all kernel SNMP/netstat counters, absolute values) and deltas.

/** The counters the lab's reports name; nstat prints many more, all kept. */
export const WATCHED = [
  'TcpExtListenOverflows',
  'TcpExtListenDrops',
  'TcpExtSyncookiesSent',
  'TcpExtSyncookiesRecv',
  'TcpExtSyncookiesFailed',
  'TcpExtTCPReqQFullDrop',
  'TcpExtTCPReqQFullDoCookies',
  'TcpExtEmbryonicRsts',
  'TcpExtTW',
  'TcpExtTWRecycled',
  'TcpExtTWKilled',
  'TcpExtTCPTimeWaitOverflow',
  'TcpActiveOpens',
  'TcpPassiveOpens',
  'TcpAttemptFails',
  'TcpEstabResets',
  'TcpOutRsts',
  'TcpRetransSegs',
  'TcpExtTCPSynRetrans',
] as const;

export type Counters = Record<string, number>;

export function parseNstat(output: string): Counters {
  const out: Counters = {};
  for (const line of output.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const f = line.trim().split(/\s+/);
    const v = Number(f[1]);
    if (f.length < 2 || !Number.isFinite(v)) throw new Error(`unrecognized nstat line: ${line}`);
    out[f[0]!] = v;
  }
  return out;
}

/** after − before for every counter in either; counters absent before count from 0. */
export function counterDeltas(before: Counters, after: Counters): Counters {
  const out: Counters = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) out[k] = (after[k] ?? 0) - (before[k] ?? 0);
  return out;
}

export function nonZero(c: Counters): Counters {
  return Object.fromEntries(Object.entries(c).filter(([, v]) => v !== 0));
}

/**
 * /proc/net/netstat and /proc/net/snmp (header line + value line per group, e.g.
 * "TcpExt: SyncookiesSent …" / "TcpExt: 0 …") under nstat's names: group + field,
 * so "TcpExt: ListenOverflows" is TcpExtListenOverflows and "Tcp: ActiveOpens" is
 * TcpActiveOpens. What a process reads there is its own network namespace's.
 */
export function parseProcNet(...files: string[]): Counters {
  const out: Counters = {};
  for (const text of files) {
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const [hg, ...names] = lines[i]!.trim().split(/\s+/);
      const [vg, ...values] = lines[i + 1]!.trim().split(/\s+/);
      if (!hg?.endsWith(':') || hg !== vg || names.length !== values.length) throw new Error(`unrecognized /proc/net line pair: ${lines[i]}`);
      const group = hg.slice(0, -1);
      names.forEach((n, j) => (out[group + n] = Number(values[j])));
    }
  }
  return out;
}
