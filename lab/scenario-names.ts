// The scenario names (a module of its own so the CLI can list them without loading the schema).
export const SCENARIOS = ['throughput', 'backlog', 'overflow', 'synflood', 'timewait'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/**
 * Local ports on the loadgen that a scenario keeps for itself (nft rules match them): the
 * loadgen's ip_local_port_range must stay clear of them, or ordinary connections would match.
 */
export const RESERVED_PORTS: Partial<Record<ScenarioName, { first: number; last: number; what: string }>> = {
  overflow: { first: 61000, last: 61999, what: 'its held handshakes' },
  synflood: { first: 20000, last: 29999, what: 'its flood' },
};
