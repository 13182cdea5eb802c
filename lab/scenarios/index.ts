// The scenarios a lab file can name, by name.
import type { LabFile } from '../labfile.js';
import { backlog } from './backlog.js';
import type { Scenario } from './common.js';
import { overflow } from './overflow.js';
import { synflood } from './synflood.js';
import { throughput } from './throughput.js';
import { timewait } from './timewait.js';

export * from './common.js';

export const SCENARIO_IMPLS: Record<LabFile['scenario']['name'], Scenario> = { throughput, backlog, overflow, synflood, timewait };
