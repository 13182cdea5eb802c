// A lab file's point as Kubernetes manifests (`lab manifests`): what a Kubernetes runtime
// would apply, generated and checked against the Kubernetes API's own schema offline
// (kubernetes-models: the OpenAPI schemas of the core API, validated with ajv), never
// applied by the lab. Each host is a pod, as it is a container on Docker and a service on a
// swarm:
//   - its sysctls in the pod's securityContext.sysctls (a pod is one network namespace);
//   - its image the lab's (`lab images`, pushed to a registry the cluster can pull from), its
//     command `sleep infinity`: the lab's processes would be `kubectl exec`s, as they are
//     Docker execs now;
//   - capabilities only where the scenario needs them, never privileged, no privilege
//     escalation;
//   - placement by node hostname (nodeSelector kubernetes.io/hostname);
//   - the server's address from a headless Service (clusterIP None, as the swarm's dnsrr):
//     server.tcplab-<point> inside the namespace;
//   - server.image (a user's own): the server pod runs it beside the lab's tools in a second
//     container, with shareProcessNamespace, which is what the Docker runtime builds with
//     `container:` network and pid modes.
// The kubelet allows only its safe sysctls; the others each node needs in
// --allowed-unsafe-sysctls, and the manifests' header says which.
import { Pod, Service } from 'kubernetes-models/v1';
import { stringify } from 'yaml';
import type { Point } from './labfile.js';
import { sysctlSettings } from './labfile.js';
import { commandArgv, commandEnv } from '../pipeline/server-host.js';
import { scenarioNamed } from '../scenarios/index.js';

/**
 * The sysctls the kubelet allows without --allowed-unsafe-sysctls, of those the lab sets per
 * host (pkg/kubelet/sysctl/safe_sysctls.go: tcp_syncookies and ip_local_port_range since
 * sysctls began, tcp_fin_timeout since 1.29).
 */
export const KUBELET_SAFE = new Set(['net.ipv4.ip_local_port_range', 'net.ipv4.tcp_syncookies', 'net.ipv4.tcp_fin_timeout']);

export interface Images {
  server: string;
  loadgen: string;
}

export interface Manifests {
  point: string;
  objects: Array<Record<string, unknown>>;
  /** The unsafe sysctls the pods set: each node that runs one needs them allowed. */
  unsafe: string[];
  /** What does not carry over, one line each. */
  notes: string[];
}

const LABEL = 'tcplab.point';

export function manifestsFor(p: Point, images: Images): Manifests {
  const c = p.config;
  const name = `tcplab-${p.id}`;
  const lg = c.loadgens[0]!;
  const caps = scenarioNamed(c.scenario.name)?.loadgenCaps ?? [];
  const notes: string[] = [];
  const nodeOf = (node: string | undefined) => {
    if (node === undefined) return {};
    if (node.startsWith('role:')) {
      notes.push(`placement ${node}: a swarm role has no Kubernetes counterpart; the pod goes where the scheduler puts it`);
      return {};
    }
    return { nodeSelector: { 'kubernetes.io/hostname': node } };
  };
  const unsafe = new Set<string>();
  const sysctls = (s: Record<string, string | number>) =>
    sysctlSettings(s).map((x) => {
      if (!KUBELET_SAFE.has(x.name)) unsafe.add(x.name);
      return { name: x.name, value: String(x.value) };
    });
  const security = (add: string[]) => ({
    privileged: false,
    allowPrivilegeEscalation: false,
    ...(add.length ? { capabilities: { add } } : {}),
  });
  const pod = (host: string, role: 'server' | 'loadgen', containers: Array<Record<string, unknown>>, extra: Record<string, unknown>) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `${name}-${host}`, labels: { [LABEL]: p.id, 'tcplab.host': host, 'tcplab.role': role } },
    spec: { hostname: host, subdomain: name, restartPolicy: 'Never', ...extra, containers },
  });
  const tools = (host: string, image: string, add: string[]) => ({
    name: host,
    image,
    command: ['sleep', 'infinity'],
    securityContext: security(add),
  });

  const own = c.server.kind === 'command' && c.server.image !== undefined;
  if (c.server.kind === 'command' && c.server.image === undefined)
    notes.push('server.command runs an argv on the netns runtime; on Kubernetes give server.image');
  const serverSysctls = sysctls(c.server.sysctls);
  const serverPod = pod(
    'server',
    'server',
    own
      ? [
          {
            name: 'own',
            image: c.server.image,
            ...(c.server.command ? { args: commandArgv(c.server) } : {}),
            env: commandEnv(c.server).map((e) => ({ name: e.split('=')[0], value: e.slice(e.indexOf('=') + 1) })),
            securityContext: security([]),
          },
          tools('server', images.server, []),
        ]
      : [tools('server', images.server, [])],
    {
      ...nodeOf(c.placement.server),
      ...(own ? { shareProcessNamespace: true } : {}),
      ...(serverSysctls.length ? { securityContext: { sysctls: serverSysctls } } : {}),
    },
  );
  const loadgenSysctls = sysctls(lg.sysctls);
  const loadgens = Array.from({ length: lg.count }, (_, i) =>
    pod(`loadgen-${i + 1}`, 'loadgen', [tools(`loadgen-${i + 1}`, images.loadgen, caps)], {
      ...nodeOf(c.placement.loadgens),
      ...(loadgenSysctls.length ? { securityContext: { sysctls: loadgenSysctls } } : {}),
    }),
  );
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, labels: { [LABEL]: p.id } },
    spec: {
      clusterIP: 'None',
      selector: { [LABEL]: p.id, 'tcplab.host': 'server' },
      ports: [
        { name: 'http', port: c.server.port, protocol: 'TCP' },
        ...(own ? [] : [{ name: 'control', port: c.server.controlPort, protocol: 'TCP' }]),
      ],
    },
  };
  // A note per distinct line (two loadgens' role placement says it once).
  return { point: p.id, objects: [serverPod, ...loadgens, service], unsafe: [...unsafe].sort(), notes: [...new Set(notes)] };
}

/** Each object checked against the Kubernetes API schema; the first problem, with where it is. */
export function validateManifests(objects: Array<Record<string, unknown>>): void {
  for (const o of objects) {
    const name = (o['metadata'] as { name?: string } | undefined)?.name ?? '?';
    try {
      if (o['kind'] === 'Pod') new Pod(o as never).validate();
      else if (o['kind'] === 'Service') new Service(o as never).validate();
      else throw new Error(`kind ${String(o['kind'])} is not one the lab makes`);
    } catch (err) {
      throw new Error(`${String(o['kind'])} ${name}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
}

export function renderManifests(m: Manifests, file: string): string {
  const head = [
    `# ${file}, point ${m.point}: ${m.objects.length} objects, valid against the Kubernetes API schema (kubernetes-models).`,
    '# Made by `lab manifests`; the lab applies nothing: kubectl apply -f this, then the lab would exec its tools in the pods.',
    '# The images: `lab images`, then push them where the cluster pulls from (--registry names that prefix).',
    m.unsafe.length
      ? `# Unsafe sysctls (the kubelet rejects these pods, SysctlForbidden, unless each node allows them): --allowed-unsafe-sysctls=${m.unsafe.join(',')}`
      : '# Every sysctl here is one the kubelet allows by default.',
    ...m.notes.map((n) => `# Note: ${n}`),
  ];
  return `${head.join('\n')}\n${m.objects.map((o) => `---\n${stringify(o)}`).join('')}`;
}
