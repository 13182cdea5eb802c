// Files the lab writes: each replaced whole (temp file + rename), so a reader — or a resume
// after a crash — sees the old file or the new one, never a part of it.
import { renameSync, writeFileSync } from 'node:fs';

export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export const writeJsonAtomic = (path: string, value: unknown): void => writeAtomic(path, JSON.stringify(value, null, 2) + '\n');
