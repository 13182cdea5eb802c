// The wait every compared reading makes for what it measures to settle (lab/scenarios/common.ts
// settle): it keeps a reading once it has held still, within a bound, says how long it waited,
// and a reading that did not settle makes its rule INCONCLUSIVE with the numbers, never FAIL.
// The readings here are real clocks: a count that goes on changing for a while, then stops.
import { describe, expect, it } from 'vitest';
import { equal, settle, unsettledReason } from '../../lab/scenarios/common.js';

/** A count that rises every 20 ms until `forMs` has passed, then holds. */
function risingFor(forMs: number): () => Promise<number> {
  const t0 = Date.now();
  return async () => Math.floor(Math.min(Date.now() - t0, forMs) / 20);
}

describe('settle', () => {
  it('a count that changes for 400 ms, then holds: kept once it held still 300 ms; the wait and the stillness recorded', async () => {
    const t0 = Date.now();
    const r = await settle(risingFor(400), String, { stillMs: 300, boundMs: 3000, everyMs: 50 });
    const took = Date.now() - t0;
    expect(r.value).toBe(20);
    expect(r.settle).toMatchObject({ settled: true, boundMs: 3000, stillMs: 300 });
    expect(r.settle.stillForMs).toBeGreaterThanOrEqual(300);
    // It waited past the last change (400 ms in) by the stillness, and not to the bound.
    expect(r.settle.waitedMs).toBeGreaterThanOrEqual(700);
    expect(r.settle.waitedMs).toBeLessThanOrEqual(took);
    expect(took).toBeLessThan(2000);
    expect(unsettledReason('the count', r.settle)).toBeUndefined();
  });

  it('a count that never holds still: the last reading at the bound, not settled; its rule INCONCLUSIVE with the numbers, never FAIL', async () => {
    const r = await settle(risingFor(60_000), String, { stillMs: 300, boundMs: 600, everyMs: 50 });
    expect(r.settle.settled).toBe(false);
    expect(r.settle.waitedMs).toBeGreaterThanOrEqual(600);
    expect(r.settle.stillForMs).toBeLessThan(300);
    const why = unsettledReason('the count', r.settle)!;
    expect(why).toMatch(/^the count had not settled: still changing \d+ ms into a wait bounded at 600 ms \(300 ms still needed\)$/);
    // A reading far from the prediction: INCONCLUSIVE, with the reason, never FAIL.
    expect(equal('the count = 99', 99, r.value, 'why', why)).toMatchObject({ verdict: 'INCONCLUSIVE', reason: why });
  });
});
