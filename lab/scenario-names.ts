// The scenario names (a module of its own so the CLI can list them without loading the schema).
export const SCENARIOS = ['throughput', 'backlog', 'overflow', 'synflood', 'timewait'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];
