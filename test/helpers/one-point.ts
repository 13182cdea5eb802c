// One point of each scenario, as the body of a lab file (everything but `runtime:`): what a
// runtime other than netns runs to prove its own wiring (hosts, the capabilities a scenario
// adds, sysctls set and read back, clean-up) once per scenario. The kernel's rules themselves
// are proven on netns with each scenario's full matrix (test/lab/scenarios.test.ts).
// Not here: throughput, which `lab up` runs on each runtime (test/lab/up.test.ts, the rootless
// suite's `lab up`), and a command server, whose wiring (found by its listener, paused by
// SIGSTOP) is nginx's, below, and the user's own image on Docker (test/runtime/own-image.test.ts).
export const ONE_POINT_PER_SCENARIO: Array<[string, string]> = [
  ['backlog (nginx)', 'scenario: {name: backlog, options: {extraClients: 5, holdMs: 1200}}\nserver: {kind: nginx, threads: 2, backlog: 16}'],
  [
    'overflow',
    'scenario: {name: overflow, options: {held: 3, late: 3, holdMs: 2500}}\nserver: {backlog: 4, sysctls: {net.ipv4.tcp_abort_on_overflow: 1}}',
  ],
  [
    'synflood',
    'scenario: {name: synflood, options: {flood: 300, intervalUs: 200, legitTimeoutMs: 2500}}\nserver: {backlog: 64, sysctls: {net.ipv4.tcp_syncookies: 1, net.ipv4.tcp_max_syn_backlog: 32}}',
  ],
  [
    'timewait',
    'scenario: {name: timewait, options: {durationMs: 1500, concurrency: 4}}\nloadgens: [{sysctls: {net.ipv4.ip_local_port_range: "40000 40099", net.ipv4.tcp_tw_reuse: 1}}]',
  ],
  ['models', 'scenario: {name: models, options: {holdMs: 1600, answerMs: 400, clients: 6}}\nserver: {backlog: 8, model: prethread, threads: 3}'],
  ['herd', 'scenario: {name: herd, options: {connections: 150}}\nserver: {model: prethread, threads: 4, share: exclusive}'],
  ['arrivals', 'scenario: {name: arrivals, options: {rate: 160, acceptRate: 100, watchMs: 2500}}\nserver: {backlog: 8}'],
];
