// What a suite's labs left on the Docker engines: every object that carries the lab's label,
// less those that were there before the suite began. A lab another run left on the machine (a
// session killed mid-sweep) is not this suite's to find, nor to remove.
import { execa } from 'execa';

/** Services and networks (on the machine's engine) and containers (on it and on each other engine), as "kind id". */
export async function labelled(otherEngines: Record<string, string> = {}): Promise<string[]> {
  const q = async (argv: string[]) => (await execa('docker', argv)).stdout.split('\n').filter(Boolean);
  const swarm = (await q(['info', '--format', '{{.Swarm.LocalNodeState}}']))[0] === 'active';
  const out = [
    ...(swarm ? (await q(['service', 'ls', '-q', '--filter', 'label=tcplab.run'])).map((x) => `service ${x}`) : []),
    ...(await q(['network', 'ls', '-q', '--filter', 'label=tcplab.run'])).map((x) => `network ${x}`),
    ...(await q(['ps', '-aq', '--filter', 'label=tcplab.run'])).map((x) => `manager container ${x}`),
  ];
  for (const [name, endpoint] of Object.entries(otherEngines))
    out.push(...(await q(['-H', endpoint, 'ps', '-aq', '--filter', 'label=tcplab.run'])).map((x) => `${name} container ${x}`));
  return out.sort();
}

/** A look at the engines now; `made()` is then what carries the label and was not there. */
export async function baseline(otherEngines: Record<string, string> = {}): Promise<{ made: () => Promise<string[]> }> {
  const before = new Set(await labelled(otherEngines));
  return { made: async () => (await labelled(otherEngines)).filter((x) => !before.has(x)) };
}
