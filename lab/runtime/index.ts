// The registry of runtimes. `auto`: Docker when an engine answers; else netns when this
// process may create network namespaces (root or CAP_NET_ADMIN); else rootless (the same
// namespaces inside a user namespace of this user's own). `swarm` only when asked for.
import { RUNTIMES, type RuntimeName } from '../../core/fields.js';
import { RuntimeUnavailable, type Runtime } from './runtime.js';

export { RUNTIMES, type RuntimeName };

export interface RuntimeOptions {
  /** Progress lines (image builds). */
  progress?: (line: string) => void;
  /** Base image for the Docker images. */
  base?: string;
  wrk2?: boolean;
}

/** Every runtime, by name: a new runtime is its own file and one line here. */
const REGISTRY: Record<Exclude<RuntimeName, 'auto'>, (o: RuntimeOptions) => Promise<Runtime>> = {
  netns: async () => new (await import('./netns.js')).NetnsRuntime(),
  docker: async (o) => new (await import('./docker.js')).DockerRuntime(o),
  rootless: async () => new (await import('./rootless.js')).RootlessRuntime(),
  swarm: async (o) => new (await import('./swarm.js')).SwarmRuntime(o),
};

export async function getRuntime(name: RuntimeName, o: RuntimeOptions = {}): Promise<Runtime> {
  const order = name === 'auto' ? (['docker', 'netns', 'rootless'] as const) : [name];
  const reasons: string[] = [];
  for (const n of order) {
    const rt = await REGISTRY[n](o);
    try {
      await rt.check();
      return rt;
    } catch (err) {
      if (!(err instanceof RuntimeUnavailable)) throw err;
      reasons.push(err.message);
      if (name !== 'auto') throw err;
    }
  }
  throw new RuntimeUnavailable(`no runtime can run here: ${reasons.join('; ')}`);
}

/** Every runtime that can run here (for `lab status` / `lab down`, which cover all labs). */
export async function availableRuntimes(): Promise<Runtime[]> {
  const out: Runtime[] = [];
  const reasons: string[] = [];
  for (const name of Object.keys(REGISTRY) as Array<keyof typeof REGISTRY>) {
    try {
      out.push(await getRuntime(name));
    } catch (err) {
      if (!(err instanceof RuntimeUnavailable)) throw err;
      reasons.push(err.message);
    }
  }
  if (!out.length) throw new RuntimeUnavailable(reasons[0]!);
  return out;
}
