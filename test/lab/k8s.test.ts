// `lab manifests`: every example's every point as Kubernetes manifests, checked by the
// Kubernetes API's own schema (kubernetes-models), which is shown to reject a broken one;
// sysctls per pod with the kubelet's unsafe ones named; capabilities only where a scenario
// needs them, never privileged; server.image as a pod of two containers sharing processes;
// the CLI's output parses as YAML documents; bad input is one line, exit 2.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parseAllDocuments } from 'yaml';
import { KUBELET_SAFE, manifestsFor, validateManifests } from '../../lab/plan/k8s.js';
import { parse } from 'yaml';
import { expandSweep, loadLabFile, validateLab } from '../../lab/plan/labfile.js';

const CLI = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));
const IMAGES = { server: 'tcplab-server:abc', loadgen: 'tcplab-loadgen:abc' };
const WORK = mkdtempSync(join(tmpdir(), 'tcplab-k8s-'));

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const pods = (objs: Obj[]) => objs.filter((o) => o['kind'] === 'Pod');

describe('lab manifests', () => {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'));

  it.each(files)('examples/%s: every point valid against the Kubernetes API schema', (f) => {
    const points = expandSweep(loadLabFile(join(EXAMPLES, f)));
    for (const p of points) {
      const m = manifestsFor(p, IMAGES);
      expect(() => validateManifests(m.objects)).not.toThrow();
      const ps = pods(m.objects as Obj[]);
      expect(ps.map((x) => x['metadata'].name)).toEqual([
        `tcplab-${p.id}-server`,
        ...Array.from({ length: p.config.loadgens[0]!.count }, (_, i) => `tcplab-${p.id}-loadgen-${i + 1}`),
      ]);
      for (const pod of ps)
        for (const c of pod['spec'].containers) expect(c.securityContext).toMatchObject({ privileged: false, allowPrivilegeEscalation: false });
      // Each sysctl of the point on its pod, and the unsafe ones named.
      const server = ps[0]!['spec'].securityContext?.sysctls ?? [];
      expect(server.map((s: Obj) => s['name']).sort()).toEqual(Object.keys(p.config.server.sysctls).sort());
      expect(m.unsafe).toEqual(
        [...new Set([...Object.keys(p.config.server.sysctls), ...Object.keys(p.config.loadgens[0]!.sysctls)])]
          .filter((n) => !KUBELET_SAFE.has(n))
          .sort(),
      );
    }
  });

  it('the schema check can fail: a sysctl value not a string, a pod without an image, a name in capitals', () => {
    const [p] = expandSweep(validateLab(parse('scenario: {name: backlog}\nserver: {sysctls: {net.core.somaxconn: 64}}\n'), { file: 'x.yaml' }));
    const fresh = () => structuredClone(manifestsFor(p!, IMAGES).objects) as Obj[];
    const a = fresh();
    a[0]!['spec'].securityContext.sysctls[0].value = 64;
    expect(() => validateManifests(a)).toThrow(/^Pod tcplab-p001-server: .*sysctls\/0\/value must be string/);
    const b = fresh();
    delete b[1]!['spec'].containers[0].image;
    b[1]!['spec'].containers[0].image = 12;
    expect(() => validateManifests(b)).toThrow(/^Pod tcplab-p001-loadgen-1: .*image must be string/);
    const c = fresh();
    c[2]!['spec'].clusterIP = 7;
    expect(() => validateManifests(c)).toThrow(/^Service tcplab-p001: /);
  });

  it('capabilities only where the scenario needs them; placement by hostname; server.image beside the tools, processes shared', () => {
    const [syn] = expandSweep(loadLabFile(join(EXAMPLES, 'synflood.yaml')));
    const s = pods(manifestsFor(syn!, IMAGES).objects as Obj[]);
    expect(s[0]!['spec'].containers[0].securityContext.capabilities).toBeUndefined();
    expect(s[1]!['spec'].containers[0].securityContext.capabilities.add.sort()).toEqual(['NET_ADMIN', 'NET_RAW']);
    const [placed] = expandSweep(
      validateLab(
        parse('runtime: swarm\nplacement: {server: node-a, loadgens: role:manager}\nscenario: {name: throughput}\nloadgens: [{count: 2}]\n'),
        { file: 'y.yaml' },
      ),
    );
    const m = manifestsFor(placed!, IMAGES);
    expect(pods(m.objects as Obj[]).map((x) => x['spec'].nodeSelector)).toEqual([{ 'kubernetes.io/hostname': 'node-a' }, undefined, undefined]);
    expect(m.notes).toEqual(['placement role:manager: a swarm role has no Kubernetes counterpart; the pod goes where the scheduler puts it']);
    const [own] = expandSweep(
      validateLab(parse('runtime: docker\nscenario: {name: throughput}\nserver: {kind: command, image: my/server:1, command: [--fast]}\n'), {
        file: 'z.yaml',
      }),
    );
    const o = pods(manifestsFor(own!, IMAGES).objects as Obj[])[0]!;
    expect(o['spec'].shareProcessNamespace).toBe(true);
    expect(o['spec'].containers.map((c: Obj) => [c['name'], c['image'], c['args']])).toEqual([
      ['own', 'my/server:1', ['--fast']],
      ['server', 'tcplab-server:abc', undefined],
    ]);
    expect(o['spec'].containers[0].env).toContainEqual({ name: 'PORT', value: '8080' });
  });

  it('the CLI: YAML documents on stdout, one line on stderr; a point the file lacks, one line, exit 2', async () => {
    const r = await execa(process.execPath, [
      CLI,
      'manifests',
      join(EXAMPLES, 'throughput-swarm.yaml'),
      '--point',
      'p002',
      '--registry',
      'reg.example:5000/lab',
    ]);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
    expect(docs.map((d) => `${d['kind']} ${d['metadata'].name}`)).toEqual([
      'Pod tcplab-p002-server',
      'Pod tcplab-p002-loadgen-1',
      'Pod tcplab-p002-loadgen-2',
      'Service tcplab-p002',
    ]);
    expect(docs[0]!['spec'].containers[0].image).toMatch(/^reg\.example:5000\/lab\/tcplab-server:[0-9a-f]{12}$/);
    expect(r.stdout).toContain('--allowed-unsafe-sysctls=net.core.somaxconn');
    expect(r.stderr.trim().split('\n')).toEqual([
      `lab manifests: ${join(EXAMPLES, 'throughput-swarm.yaml')} p002: 4 objects, valid against the Kubernetes API schema; unsafe sysctls each node must allow: net.core.somaxconn`,
    ]);
    writeFileSync(join(WORK, 'one.yaml'), 'scenario: {name: backlog}\n');
    const bad = await execa(process.execPath, [CLI, 'manifests', join(WORK, 'one.yaml'), '--point', 'p009'], { reject: false });
    expect([bad.exitCode, bad.stdout, bad.stderr.trim()]).toEqual([
      2,
      '',
      `lab manifests: --point: got "p009": one of p001 (the points of ${join(WORK, 'one.yaml')})`,
    ]);
  });
});
