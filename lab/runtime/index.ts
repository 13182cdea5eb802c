// The registry of runtimes. `auto`: Docker when an engine answers, else netns.
import { RUNTIMES, type RuntimeName } from '../fields.js';
import { RuntimeUnavailable, type Runtime } from './runtime.js';

export { RUNTIMES, type RuntimeName };

export interface RuntimeOptions {
  /** Progress lines (image builds). */
  progress?: (line: string) => void;
  /** Base image for the Docker images. */
  base?: string;
  wrk2?: boolean;
}

export async function getRuntime(name: RuntimeName, o: RuntimeOptions = {}): Promise<Runtime> {
  if (name === 'docker' || name === 'auto') {
    const { DockerRuntime } = await import('./docker.js');
    const rt = new DockerRuntime(o);
    try {
      await rt.check();
      return rt;
    } catch (err) {
      if (name === 'docker' || !(err instanceof RuntimeUnavailable)) throw err;
    }
  }
  const { NetnsRuntime } = await import('./netns.js');
  const rt = new NetnsRuntime();
  await rt.check();
  return rt;
}

/** Every runtime that can run here (for `lab status` / `lab down`, which cover all labs). */
export async function availableRuntimes(): Promise<Runtime[]> {
  const out: Runtime[] = [];
  const reasons: string[] = [];
  for (const name of ['netns', 'docker'] as const) {
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
