// What `lab tune` hands back for the settings it chose, each as a file a user applies with the
// tool it is for (each checked by that tool: lab/pipeline/tune.ts checkOutputs):
//   - sysctl.d/90-tcplab-tune.conf: the server's sysctls (`sysctl -p FILE`);
//   - listen-backlog.txt: the backlog to pass to listen(), and each server's own setting for it;
//   - k8s-pod-sysctls.yaml: a pod's securityContext.sysctls, the unsafe ones named;
//   - compose-sysctls.yaml: a docker-compose service's sysctls;
//   - prometheus-rules.yaml: alerting rules on the node exporter's netstat counters that show the
//     same problem in production, and prometheus-rules.test.yaml: promtool's unit test of them on
//     series made from the tune's own points (the alert fires for a point that missed, not for
//     the chosen one).
import { Pod } from 'kubernetes-models/v1';
import { stringify } from 'yaml';
import { lookup, validateValue } from '../../sysctl/registry.js';
import { KUBELET_SAFE } from './k8s.js';
import type { Point } from './labfile.js';
import type { Objective } from './tune.js';

export interface TuneOutput {
  file: string;
  text: string;
}

/** The server's sysctls of a point, canonical names, as the kernel takes them. */
export function serverSysctls(config: Point['config']): Array<[string, string]> {
  return Object.entries(config.server.sysctls)
    .map(([name, v]): [string, string] => {
      const t = lookup(name);
      return [t.name, validateValue(t, v)];
    })
    .sort(([a], [b]) => a.localeCompare(b));
}

/**
 * A counter the node exporter's netstat collector exposes as node_netstat_<Group>_<Name>, and
 * whether its default --collector.netstat.fields takes it (TcpExt_(Listen.*|Syncookies.*|
 * TCPSynRetrans|TCPTimeouts|…)); the others need the flag widened.
 */
export interface Watch {
  counter: string;
  alert: string;
  summary: string;
  byDefault: boolean;
}

/** The counters that show in production what the objective holds the point to. */
export function watchesFor(objective: Objective, syncookies: boolean): Watch[] {
  const w: Watch[] = [];
  if (objective.listenOverflows !== undefined || objective.errors !== undefined || objective.connectP99Ms !== undefined)
    w.push({
      counter: 'TcpExt_ListenOverflows',
      alert: 'TcpListenQueueOverflow',
      summary: 'SYNs or final ACKs dropped on a full accept queue: connects wait for retransmissions (1 s and more) or time out',
      byDefault: true,
    });
  if (objective.synDrops !== undefined || objective.errors !== undefined)
    w.push({
      counter: 'TcpExt_ListenDrops',
      alert: 'TcpListenDrops',
      summary: 'SYNs or final ACKs the listener dropped (a full accept queue or a full SYN queue)',
      byDefault: true,
    });
  if (syncookies)
    w.push({
      counter: 'TcpExt_TCPReqQFullDrop',
      alert: 'TcpSynQueueFullDrop',
      summary: 'SYNs dropped on a full SYN queue without a cookie (tcp_syncookies 0)',
      byDefault: false,
    });
  return w;
}

const metric = (w: Watch) => `node_netstat_${w.counter}`;
const annotations = (w: Watch, instance: string) => ({
  summary: `${w.summary} on ${instance}`,
  ...(w.byDefault ? {} : { collector: `node_exporter --collector.netstat.fields must include ${w.counter} (not in its default)` }),
});

export function prometheusRules(watches: Watch[], window = '5m'): string {
  return stringify(
    {
      groups: [
        {
          name: 'tcplab-tune',
          rules: watches.map((w) => ({
            alert: w.alert,
            expr: `increase(${metric(w)}[${window}]) > 0`,
            labels: { severity: 'warning' },
            annotations: annotations(w, '{{ $labels.instance }}'),
          })),
        },
      ],
    },
    { lineWidth: 0 },
  );
}

/**
 * promtool's unit test of the rules: each point's counter as a series (its value before the
 * point, then after, a minute apart), the alert expected for each point whose counter grew.
 */
export function prometheusTest(
  watches: Watch[],
  points: Array<{ id: string; before: Record<string, number>; after: Record<string, number> }>,
): string {
  const key = (w: Watch) => `TcpExt${w.counter.slice('TcpExt_'.length)}`;
  const series = points.flatMap((p) =>
    watches.map((w) => ({
      series: `${metric(w)}{instance="${p.id}"}`,
      // 2 minutes at the value before, then 10 at the value after.
      values: `${p.before[key(w)] ?? 0}x2 ${p.after[key(w)] ?? 0}x10`,
    })),
  );
  return stringify({
    rule_files: ['prometheus-rules.yaml'],
    evaluation_interval: '1m',
    tests: [
      {
        interval: '1m',
        input_series: series,
        alert_rule_test: watches.map((w) => ({
          eval_time: '4m',
          alertname: w.alert,
          exp_alerts: points
            .filter((p) => (p.after[key(w)] ?? 0) > (p.before[key(w)] ?? 0))
            .map((p) => ({ exp_labels: { severity: 'warning', instance: p.id }, exp_annotations: annotations(w, p.id) })),
        })),
      },
    ],
  });
}

/** The backlog as each server takes it; what the kernel keeps is min(backlog, somaxconn). */
export function backlogText(backlog: number, somaxconn: string | undefined): string {
  const cap = somaxconn === undefined ? 'net.core.somaxconn (the kernel caps it there)' : `net.core.somaxconn ${somaxconn}`;
  return [
    `# The listen() backlog the tune chose: ${backlog}. The kernel keeps min(backlog, ${cap}).`,
    `listen(fd, ${backlog});`,
    `nginx:     listen 8080 backlog=${backlog};`,
    `Apache:    ListenBacklog ${backlog}`,
    `lighttpd:  server.listen-backlog = ${backlog}`,
    `HAProxy:   backlog ${backlog}   (in the frontend, or bind … backlog ${backlog})`,
    `gunicorn:  --backlog ${backlog}`,
    `Node.js:   server.listen({ port: 8080, backlog: ${backlog} })`,
    '',
  ].join('\n');
}

export function tuneOutputs(
  config: Point['config'],
  objective: Objective,
  provenance: string,
): { outputs: TuneOutput[]; unsafe: string[]; pod: Record<string, unknown>; watches: Watch[] } {
  const sysctls = serverSysctls(config);
  const unsafe = sysctls.map(([n]) => n).filter((n) => !KUBELET_SAFE.has(n));
  const somaxconn = sysctls.find(([n]) => n === 'net.core.somaxconn')?.[1];
  const conf = [
    `# ${provenance}`,
    "# The server host's sysctls. Apply: sysctl -p THIS_FILE (or copy it to /etc/sysctl.d/).",
    ...sysctls.map(([n, v]) => `${n} = ${v}`),
    '',
  ].join('\n');
  const pod = new Pod({
    metadata: { name: 'server' },
    spec: {
      securityContext: { sysctls: sysctls.map(([name, value]) => ({ name, value })) },
      containers: [{ name: 'server', image: 'YOUR_IMAGE' }],
    },
  });
  const k8s = [
    `# ${provenance}`,
    "# A pod's securityContext.sysctls (a pod is one network namespace: these are its own).",
    unsafe.length
      ? `# Unsafe sysctls (each node's kubelet needs --allowed-unsafe-sysctls=${unsafe.join(',')}): ${unsafe.join(', ')}`
      : '# Every one is a safe sysctl: the kubelet allows it without a flag.',
    stringify(pod.toJSON()),
  ].join('\n');
  const compose = [
    `# ${provenance}`,
    "# A docker-compose service's sysctls (its own network namespace's).",
    stringify({ services: { server: { image: 'YOUR_IMAGE', sysctls: Object.fromEntries(sysctls) } } }),
  ].join('\n');
  const cookies = sysctls.some(([n]) => n === 'net.ipv4.tcp_syncookies');
  const watches = watchesFor(objective, cookies);
  return {
    unsafe,
    watches,
    pod: pod.toJSON() as Record<string, unknown>,
    outputs: [
      { file: 'sysctl.d/90-tcplab-tune.conf', text: conf },
      { file: 'listen-backlog.txt', text: backlogText(config.server.backlog, somaxconn) },
      { file: 'k8s-pod-sysctls.yaml', text: k8s },
      { file: 'compose-sysctls.yaml', text: compose },
      { file: 'prometheus-rules.yaml', text: `# ${provenance}\n${prometheusRules(watches)}` },
    ],
  };
}
