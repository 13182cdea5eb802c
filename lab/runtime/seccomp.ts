// A seccomp profile for a Docker host that needs syscalls the engine's default profile may
// refuse: the engine's default profile, read from a file (Docker has no API that returns it),
// with the named syscalls allowed on top and nothing else changed. The io_uring backend
// needs io_uring_setup, io_uring_enter and io_uring_register: Docker engines up to 24 allow
// them by default, engines from 25.0 do not (moby#46762).
import { existsSync, readFileSync } from 'node:fs';
import { EnvironmentError } from '../../core/errors.js';

/**
 * Where the engine's default profile is looked for: where scripts/install-docker.sh unpacks it
 * (from Debian's golang-github-docker-docker-dev of docker.io's version), then that package's
 * own path if it is installed.
 */
export const DOCKER_DEFAULT_PROFILES = [
  '/usr/local/share/tcplab/docker-default-seccomp.json',
  '/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json',
];
/** Another file to start from (e.g. your engine's own profiles/seccomp/default.json). */
export const BASE_ENV = 'TCPLAB_SECCOMP_BASE';

/** The base profile's file: $TCPLAB_SECCOMP_BASE, else the first of DOCKER_DEFAULT_PROFILES there is. */
export function defaultBase(): string {
  return process.env[BASE_ENV] || DOCKER_DEFAULT_PROFILES.find((f) => existsSync(f)) || DOCKER_DEFAULT_PROFILES[0]!;
}

export const URING_SYSCALLS = ['io_uring_setup', 'io_uring_enter', 'io_uring_register'] as const;

interface Rule {
  names?: string[];
  name?: string;
  action: string;
  args?: unknown[] | null;
  includes?: Record<string, unknown>;
  excludes?: Record<string, unknown>;
  [k: string]: unknown;
}
interface Profile {
  defaultAction: string;
  syscalls: Rule[];
  [k: string]: unknown;
}

export interface SeccompProfile {
  /** The profile, as the engine takes it (HostConfig.SecurityOpt "seccomp=<json>"). */
  json: string;
  /** The file it was made from. */
  base: string;
  /** The syscalls allowed on top of it (those the base did not allow unconditionally already). */
  added: string[];
  /** One line for the point record. */
  describe: string;
}

const empty = (o: Record<string, unknown> | undefined) => !o || Object.keys(o).length === 0;
/** A rule that allows its syscalls whatever the arguments, architecture or capabilities. */
const unconditionalAllow = (r: Rule) => r.action === 'SCMP_ACT_ALLOW' && !(r.args && r.args.length) && empty(r.includes) && empty(r.excludes);
const namesOf = (r: Rule) => r.names ?? (r.name ? [r.name] : []);

/**
 * The base profile with `syscalls` allowed unconditionally. A rule of the base that names one
 * of them with another action (an ERRNO rule, a conditional allow) loses that name, so no
 * two rules of different actions name one syscall. Throws an EnvironmentError, one line, when
 * the base is missing or is not a seccomp profile.
 */
export function profileAllowing(syscalls: readonly string[], base = defaultBase()): SeccompProfile {
  const why = `the lab allows ${syscalls.join(', ')} on top of Docker's default seccomp profile, read from ${base}`;
  let text: string;
  try {
    text = readFileSync(base, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new EnvironmentError(
      `${why}: ${code} (scripts/install-docker.sh puts Debian's there; or set ${BASE_ENV} to your engine's profiles/seccomp/default.json)`,
    );
  }
  let p: Profile;
  try {
    p = JSON.parse(text) as Profile;
  } catch (err) {
    throw new EnvironmentError(`${why}: not JSON (${(err as Error).message})`);
  }
  if (typeof p?.defaultAction !== 'string' || !Array.isArray(p.syscalls) || !p.syscalls.every((r) => r && typeof r.action === 'string'))
    throw new EnvironmentError(`${why}: not a seccomp profile (it needs defaultAction and a syscalls list of rules with an action)`);

  const want = new Set(syscalls);
  const already = new Set(p.syscalls.filter(unconditionalAllow).flatMap(namesOf));
  const added = syscalls.filter((s) => !already.has(s));
  const rules: Rule[] = [];
  for (const r of p.syscalls) {
    if (unconditionalAllow(r)) {
      rules.push(r);
      continue;
    }
    const keep = namesOf(r).filter((n) => !want.has(n));
    if (keep.length === namesOf(r).length) rules.push(r);
    else if (keep.length) {
      const { name: _name, names: _names, ...rest } = r;
      rules.push({ ...rest, names: keep });
    }
  }
  if (added.length) rules.push({ names: added, action: 'SCMP_ACT_ALLOW', args: [], comment: 'tcplab: the io_uring backend' });
  return {
    json: JSON.stringify({ ...p, syscalls: rules }),
    base,
    added,
    describe: `Docker's default profile (${base})${added.length ? ` + ${added.join(', ')}` : `, which allows ${syscalls.join(', ')} already`}`,
  };
}
