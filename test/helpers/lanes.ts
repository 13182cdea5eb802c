import { describe } from 'vitest';
// Which runtimes this vitest process covers. scripts/test-all.sh runs the lab's suites in two
// lanes at once, one for netns and rootless, one for Docker and the swarm, and a file that
// covers several runtimes is given to both: each lane defines only its own runtimes' cases, so
// every case runs once, in the lane that has what it needs. Unset (a developer running one
// file), every case is defined. TCPLAB_TEST_RUNTIMES=netns,rootless or docker,swarm.
const SELECTED = process.env['TCPLAB_TEST_RUNTIMES']?.split(',').filter(Boolean) ?? null;

export type LaneRuntime = 'netns' | 'rootless' | 'docker' | 'swarm';

/** Whether this process runs the cases of this runtime. */
export const inLane = (rt: LaneRuntime): boolean => SELECTED === null || SELECTED.includes(rt);

/** The runtimes of a table that this process runs. */
export const laneRuntimes = <T extends LaneRuntime>(rts: readonly T[]): T[] => rts.filter(inLane);

/** `describe`, defined only where this process runs rt's cases (elsewhere not defined at all, not skipped). */
export function describeIn(rt: LaneRuntime, name: string, fn: () => void): void {
  if (inLane(rt)) describe(name, fn);
}
