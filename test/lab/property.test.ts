// The kernel is right by definition here. Random settings inside each scenario's documented
// ranges (backlog, somaxconn, the reactor's design, tcp_abort_on_overflow, the SYN-ACK and SYN
// retries, accept rates, watch lengths), run on this kernel: no verdict may be FAIL, and one
// the model does not cover is INCONCLUSIVE with its reason. The seed is printed; give it back
// with PROPERTY_SEED=N to run the same points. By default it is the UTC day, so a day's runs
// agree and the points change from one day to the next. A FAIL found becomes a fixed case in
// REGRESSIONS.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { readRecords, verdictLines } from '../helpers/verdicts.js';
import { prng } from '../../lab/in-host/arrivals.js';

const CLI = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
const WORK = mkdtempSync(join(tmpdir(), 'tcplab-property-'));
const SEED = Number(process.env['PROPERTY_SEED'] ?? Math.floor(Date.now() / 86_400_000));
/** Points drawn per scenario: the bound CI runs. */
const POINTS = 2;

/** Axes of a sweep's zip, each point's value drawn by `draw`. */
type Axes = Record<string, Array<number | string>>;
function drawn(n: number, draw: () => Record<string, number | string>): Axes {
  const axes: Axes = {};
  for (let i = 0; i < n; i++) for (const [k, v] of Object.entries(draw())) (axes[k] ??= []).push(v);
  return axes;
}

const rand = prng(SEED);
const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

/** Each scenario's lab file without its sweep, and the points drawn for it. */
const CASES: Array<[string, string, Axes]> = [
  [
    'backlog',
    'scenario: {name: backlog}',
    drawn(POINTS, () => {
      const model = pick(['single', 'single', 'reuseport'] as const);
      return {
        'server.backlog': int(1, 300),
        'server.sysctls.net.core.somaxconn': int(8, 400),
        'server.model': model,
        'server.threads': model === 'reuseport' ? 2 : 1,
        'scenario.options.extraClients': int(0, 10),
        'scenario.options.holdMs': int(800, 1500),
      };
    }),
  ],
  [
    'overflow',
    'scenario: {name: overflow}',
    drawn(POINTS, () => ({
      'server.backlog': int(1, 12),
      'server.sysctls.net.core.somaxconn': int(4, 64),
      'server.sysctls.net.ipv4.tcp_abort_on_overflow': int(0, 1),
      'server.sysctls.net.ipv4.tcp_synack_retries': int(1, 5),
      'loadgens.0.sysctls.net.ipv4.tcp_syn_retries': int(2, 6),
      'scenario.options.acceptRate': pick([0, 0, 50]),
      'scenario.options.held': int(1, 4),
      'scenario.options.late': int(0, 4),
      'scenario.options.holdMs': int(1000, 4000),
    })),
  ],
  [
    'arrivals',
    'scenario: {name: arrivals, options: {watchMs: 2500}}',
    drawn(POINTS, () => ({
      'server.backlog': int(2, 32),
      'scenario.options.schedule': pick(['fixed', 'fixed', 'poisson', 'bursts']),
      'scenario.options.rate': int(20, 300),
      'scenario.options.acceptRate': pick([50, 100, 200]),
      'scenario.options.durationMs': int(300, 1000),
      'scenario.options.burst': int(2, 30),
      'scenario.options.periodMs': int(50, 300),
      'loadgens.0.sysctls.net.ipv4.tcp_syn_linear_timeouts': int(0, 4),
    })),
  ],
];

/** FAILs the property test found, kept as fixed points (with where they came from). */
const REGRESSIONS: Array<[string, string]> = [
  // Found while building the test (by hand, the same class): the reactor's reuseport design opens
  // 2 listeners; the burst spread over both queues and the single-queue rules said FAIL.
  ['backlog, an SO_REUSEPORT group', 'scenario: {name: backlog}\nserver: {model: reuseport, threads: 2, backlog: 64}'],
  // Seed 16 (2 points), with the machine busy: a late client's 3rd SYN retransmission read 0.12 s
  // early. The time is taken as ss starts, and ss took that long to run: the rule now allows for
  // how long each reading's ss took.
  [
    'overflow, a late SYN read while ss was slow',
    'scenario: {name: overflow, options: {held: 3, late: 4, holdMs: 3393}}\nserver: {backlog: 2, sysctls: {net.core.somaxconn: 46, net.ipv4.tcp_synack_retries: 4}}\nloadgens: [{sysctls: {net.ipv4.tcp_syn_retries: 5}}]',
  ],
];

const yaml = (axes: Axes) =>
  `sweep:\n  zip:\n${Object.entries(axes)
    .map(([k, v]) => `    ${k}: [${v.join(', ')}]`)
    .join('\n')}\n`;

async function run(name: string, text: string) {
  const f = join(WORK, `${name.replace(/\W+/g, '-')}.yaml`);
  writeFileSync(f, `runtime: netns\n${text}\n`);
  const r = await execa(process.execPath, [CLI, 'sweep', f], { reject: false, cwd: WORK });
  expect(r.exitCode, r.stderr).toBe(0);
  const recs = readRecords(join(WORK, r.stdout.trim()));
  for (const p of recs) {
    const lines = verdictLines(p);
    const at = `seed ${SEED}, ${p.id} ${JSON.stringify(p.settings)}`;
    expect(
      lines.filter((l) => l.startsWith('FAIL')),
      at,
    ).toEqual([]);
    expect(lines.filter((l) => l.startsWith('PASS')).length, `${at}: no rule held\n${lines.join('\n')}`).toBeGreaterThan(0);
    for (const v of p.scenario.verdicts.filter((x) => x.verdict === 'INCONCLUSIVE')) expect(v.reason, `${at}: ${v.rule}`).not.toBe('');
  }
  return recs;
}

describe(`random settings on this kernel (seed ${SEED}: PROPERTY_SEED=${SEED} runs them again)`, () => {
  it.each(CASES)(
    '%s: 2 points drawn in its ranges, no FAIL',
    async (name, base, axes) => {
      process.stderr.write(`property: ${name}, seed ${SEED}: ${JSON.stringify(axes)}\n`);
      expect(await run(name, `${base}\n${yaml(axes)}`)).toHaveLength(POINTS);
    },
    120_000,
  );

  it.each(REGRESSIONS)(
    'regression: %s, no FAIL',
    async (name, text) => {
      expect(await run(name, text)).toHaveLength(1);
    },
    60_000,
  );
});
