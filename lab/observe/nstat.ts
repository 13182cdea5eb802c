// Parser for `nstat -az` (all kernel SNMP/netstat counters, absolute values) and deltas.

/** The counters the lab's reports name; nstat prints many more, all kept. */
export const WATCHED = [
  'TcpExtListenOverflows', 'TcpExtListenDrops', 'TcpExtSyncookiesSent', 'TcpExtSyncookiesRecv', 'TcpExtSyncookiesFailed',
  'TcpExtTCPReqQFullDrop', 'TcpExtTCPReqQFullDoCookies', 'TcpExtEmbryonicRsts', 'TcpExtTW', 'TcpExtTWRecycled', 'TcpExtTWKilled',
  'TcpExtTCPTimeWaitOverflow', 'TcpActiveOpens', 'TcpPassiveOpens', 'TcpAttemptFails', 'TcpEstabResets', 'TcpOutRsts',
  'TcpRetransSegs', 'TcpExtTCPSynRetrans',
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
