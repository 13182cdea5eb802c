// Files the lab writes: each replaced whole (temp file + rename), so a reader — or a resume
// after a crash — sees the old file or the new one, never a part of it.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { EnvironmentError, InputError } from './errors.js';

export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    // On disk before it takes the name: after a crash of the machine, too, the name holds a whole file.
    const fd = openSync(tmp, 'w');
    try {
      const bytes = Buffer.from(text);
      for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    // A full disk or a folder that went away: leave no half-written temp file behind.
    rmSync(tmp, { force: true });
    throw new EnvironmentError(`${path}: cannot write it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** A folder the lab writes into, made if needed; one line when it cannot be. */
export function makeDir(path: string): void {
  try {
    mkdirSync(path, { recursive: true });
  } catch (err) {
    throw new EnvironmentError(`${path}: cannot make the folder (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

export const writeJsonAtomic = (path: string, value: unknown): void => writeAtomic(path, JSON.stringify(value, null, 2) + '\n');

/** A file's text, or one line naming it and why it cannot be read (an InputError, or Err). */
export function readText(file: string, Err: new (message: string) => InputError = InputError): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Err(`${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** A JSON file the lab wrote (a record, lab.json, environment.json), or one line naming it. */
export function readJson(file: string): unknown {
  const text = readText(file);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError(`${file}: not valid JSON (${(err as Error).message.split('\n')[0]}); the file is damaged`);
  }
}
