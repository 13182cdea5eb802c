// `lab schema` and `lab schema --tune`, as a user's editor takes them: the JSON Schemas the
// CLI prints, compiled by a JSON Schema validator (Ajv, draft 2020-12), accept every example
// file the lab itself accepts, and reject what the lab's own loader rejects for its shape.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse as parseYaml } from 'yaml';
import { validateLab } from '../../lab/plan/labfile.js';
import { validateTune } from '../../lab/plan/tune.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLES = join(ROOT, 'examples');
const yamlOf = (file: string): unknown => parseYaml(readFileSync(file, 'utf8'));
const yamls = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.yaml'));

async function printed(args: string[]) {
  const r = await execa('node', [join(ROOT, 'dist/lab/bin.js'), 'schema', ...args]);
  const schema = JSON.parse(r.stdout) as Record<string, unknown>;
  return new Ajv2020({ strict: false, allErrors: true }).compile(schema);
}

describe('lab schema', () => {
  it('accepts every example lab file, and rejects an unknown key, a wrong type and a value out of range as the lab does', async () => {
    const valid = await printed([]);
    const files = yamls(EXAMPLES);
    expect(files.length).toBeGreaterThan(10);
    for (const f of files) expect([f, valid(yamlOf(join(EXAMPLES, f))), valid.errors]).toEqual([f, true, null]);
    const base = yamlOf(join(EXAMPLES, 'backlog.yaml')) as Record<string, unknown>;
    const bad: Array<[string, Record<string, unknown>]> = [
      ['an unknown key', { ...base, sever: { backlog: 16 } }],
      ['a wrong type', { ...base, repetitions: 'two' }],
      ['out of range', { ...base, repetitions: 0 }],
      ['a tune key', { ...base, objective: { errors: 0 } }],
    ];
    for (const [what, raw] of bad) {
      expect([what, valid(raw)]).toEqual([what, false]);
      expect(() => validateLab(raw, { file: 'x.yaml' }), what).toThrow();
    }
  });

  it('--tune accepts every example tune file, and rejects a sweep, an unknown objective and an empty list as lab tune does', async () => {
    const valid = await printed(['--tune']);
    const dir = join(EXAMPLES, 'tune');
    const files = yamls(dir);
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files) expect([f, valid(yamlOf(join(dir, f))), valid.errors]).toEqual([f, true, null]);
    const base = yamlOf(join(dir, files[0]!)) as Record<string, unknown>;
    const bad: Array<[string, Record<string, unknown>]> = [
      ['a sweep', { ...base, sweep: { matrix: { 'server.backlog': [16] } } }],
      ['an unknown objective', { ...base, objective: { overflows: 0 } }],
      ['an empty list of values', { ...base, tune: { 'server.backlog': [] } }],
      ['no objective', Object.fromEntries(Object.entries(base).filter(([k]) => k !== 'objective'))],
    ];
    for (const [what, raw] of bad) {
      expect([what, valid(raw)]).toEqual([what, false]);
      expect(() => validateTune(raw, 'x.yaml'), what).toThrow();
    }
  });
});
