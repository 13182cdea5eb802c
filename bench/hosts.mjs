#!/usr/bin/env node
// Time to create and destroy one sweep point's hosts (a server and a loadgen, with a
// sysctl each) on each runtime. Usage: sudo node bench/hosts.mjs [REPS=10] [netns|docker|rootless …] (rootless: as any user)
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const reps = Number(process.argv[2] ?? 10);
const which = process.argv.slice(3).length ? process.argv.slice(3) : ['netns', 'docker'];
const { parseSetting } = await import('../dist/sysctl/registry.js');
const { getRuntime } = await import('../dist/lab/runtime/index.js');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

for (const name of which) {
  const rt = await getRuntime(name);
  if (rt.prepare) await rt.prepare(); // images built before timing
  const create = [];
  const destroy = [];
  for (let i = 0; i < reps; i++) {
    const spec = {
      runId: `bench-${process.pid}-${i}`,
      subnet: '198.18.42.0/24',
      logDir: mkdtempSync(join(tmpdir(), 'tcplab-bench-')),
      hosts: [
        { name: 'server', role: 'server', sysctls: [parseSetting('net.core.somaxconn=128')] },
        { name: 'loadgen-1', role: 'loadgen', sysctls: [parseSetting('net.ipv4.tcp_tw_reuse=1')] },
      ],
    };
    let t = performance.now();
    const lab = await rt.create(spec);
    create.push(performance.now() - t);
    t = performance.now();
    await lab.destroy();
    destroy.push(performance.now() - t);
  }
  console.log(
    `${name.padEnd(6)} create median ${median(create).toFixed(0)} ms (min ${Math.min(...create).toFixed(0)}, max ${Math.max(...create).toFixed(0)}), destroy median ${median(destroy).toFixed(0)} ms (min ${Math.min(...destroy).toFixed(0)}, max ${Math.max(...destroy).toFixed(0)}), ${reps} reps`,
  );
}
