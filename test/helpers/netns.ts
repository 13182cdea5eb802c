// Throw-away network namespaces for tests that need their own sysctls.
// Never touches the root namespace's sysctls.
import { execFileSync } from 'node:child_process';

let seq = 0;

export interface TestNetns {
  name: string;
  exec(argv: string[], input?: string): string;
  sysctl(key: string, value?: string | number): string;
  remove(): void;
}

export function createNetns(tag: string): TestNetns {
  if (process.getuid?.() !== 0) {
    throw new Error('this test needs root (it creates network namespaces with `ip netns add`); run it as root');
  }
  const name = `tcplab-t${process.pid}-${tag}-${seq++}`;
  execFileSync('ip', ['netns', 'add', name]);
  const exec = (argv: string[], input?: string) =>
    execFileSync('ip', ['netns', 'exec', name, ...argv], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  exec(['ip', 'link', 'set', 'lo', 'up']);
  return {
    name,
    exec,
    sysctl(key, value) {
      if (value !== undefined) exec(['sysctl', '-qw', `${key}=${value}`]);
      return exec(['sysctl', '-n', key]).trim();
    },
    remove() {
      execFileSync('ip', ['netns', 'del', name]);
    },
  };
}
