// The scenarios a lab file can name: one line each.
import { arrivals } from './arrivals.js';
import { backlog } from './backlog.js';
import type { Scenario } from './common.js';
import { herd } from './herd.js';
import { models } from './models.js';
import { overflow } from './overflow.js';
import { synflood } from './synflood.js';
import { throughput } from './throughput.js';
import { timewait } from './timewait.js';

export * from './common.js';

export const SCENARIOS = [throughput, backlog, overflow, synflood, timewait, herd, models, arrivals] as const;

export type ScenarioName = (typeof SCENARIOS)[number]['name'];
export const SCENARIO_NAMES = SCENARIOS.map((s) => s.name);

/** The scenario of a name (a record's or a lab file's); undefined when there is none. */
export function scenarioNamed(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
