// Lab files: the schema's errors (file, field path, value, what is allowed), and the
// sweep's expansion into points.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expandSweep, loadLabFile, splitPath, validateLabFile } from '../../lab/plan/labfile.js';
import { BAD_LAB_FILES } from '../helpers/bad-lab-files.js';

const dir = mkdtempSync(join(tmpdir(), 'tcplab-labfile-'));
const file = (name: string, text: string) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};
const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));

describe('lab file errors: one line naming the file, the field, the value and what is allowed', () => {
  it.each(BAD_LAB_FILES)('%s', (_name, text, msg) => {
    const f = file(`${_name.replace(/\W+/g, '-')}.yaml`, text);
    expect(() => loadLabFile(f)).toThrow(`${f}: ${msg}`);
    try {
      loadLabFile(f);
    } catch (err) {
      expect((err as Error).message.split('\n')).toHaveLength(1);
      expect((err as Error).name).toBe('LabFileError');
    }
  });

  it('a missing file and bad YAML', () => {
    expect(() => loadLabFile(join(dir, 'nope.yaml'))).toThrow(`${join(dir, 'nope.yaml')}: cannot read it (ENOENT)`);
    const f = file('bad.yaml', 'scenario: {name: backlog\n');
    expect(() => loadLabFile(f)).toThrow(`${f}: not valid YAML:`);
  });

  it('the examples are valid', () => {
    for (const f of ['backlog.yaml', 'throughput.yaml', 'overflow.yaml', 'synflood.yaml', 'timewait.yaml'])
      expect(() => loadLabFile(join(EXAMPLES, f))).not.toThrow();
  });
});

describe('sweep expansion', () => {
  it('matrix × zip, last matrix axis fastest, ids stable', () => {
    const lab = validateLabFile(
      {
        scenario: { name: 'backlog' },
        sweep: {
          matrix: { 'server.backlog': [16, 128], 'server.sysctls.net.core.somaxconn': [64, 4096] },
          zip: { 'server.model': ['single', 'reuseport'], 'server.threads': [1, 2] },
        },
      },
      'x.yaml',
    );
    const pts = expandSweep(lab);
    expect(pts).toHaveLength(8);
    expect(pts.map((p) => p.id)).toEqual(['p001', 'p002', 'p003', 'p004', 'p005', 'p006', 'p007', 'p008']);
    expect(pts[0]!.settings).toEqual({
      'server.backlog': 16,
      'server.sysctls.net.core.somaxconn': 64,
      'server.model': 'single',
      'server.threads': 1,
    });
    expect(pts[1]!.settings).toEqual({
      'server.backlog': 16,
      'server.sysctls.net.core.somaxconn': 64,
      'server.model': 'reuseport',
      'server.threads': 2,
    });
    expect(pts[7]!.config.server).toMatchObject({ backlog: 128, model: 'reuseport', threads: 2, sysctls: { 'net.core.somaxconn': 4096 } });
    // The lab file itself is not changed by the expansion.
    expect(lab.server.backlog).toBe(511);
  });

  it('no axes: one point', () => {
    expect(expandSweep(validateLabFile({ scenario: { name: 'throughput' } }, 'x.yaml'))).toHaveLength(1);
  });

  it('sysctl names keep their dots in a path', () => {
    expect(splitPath('server.sysctls.net.core.somaxconn')).toEqual(['server', 'sysctls', 'net.core.somaxconn']);
    expect(splitPath('loadgens.0.options.connections')).toEqual(['loadgens', '0', 'options', 'connections']);
  });
});
