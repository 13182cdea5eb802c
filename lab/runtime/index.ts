// The registry of runtimes and `auto`: Docker when an engine answers (next issue), else netns.
import { RuntimeUnavailable, type Runtime } from './runtime.js';

export const RUNTIMES = ['auto', 'netns', 'docker'] as const;
export type RuntimeName = (typeof RUNTIMES)[number];

export async function getRuntime(name: RuntimeName): Promise<Runtime> {
  if (name === 'docker') throw new RuntimeUnavailable('the docker runtime is not built yet; use --runtime netns');
  const { NetnsRuntime } = await import('./netns.js');
  const rt = new NetnsRuntime();
  await rt.check();
  return rt;
}
