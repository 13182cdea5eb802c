// What every `lab` command is: its flags and their checks (define: commander, pure, no process,
// no file, no host, so tests parse without running anything) and what it does (run). One file
// per command in this folder; cli.ts lists them.
import { Option, type Command } from 'commander';

export interface LabCommand<I extends { cmd: string }> {
  /** Adds the command to the program; its action checks the flags and calls done with what to do. */
  define(program: Command, done: (inv: I) => void): void;
  /** Does it; the exit code. */
  run(inv: I): Promise<number>;
}

export const opt = (flags: string, help: string) => new Option(flags, help);
/** A repeatable flag's values, in order. */
export const repeatable = (v: string, prev: string[] = []) => [...prev, v];
export const say = (s: string) => process.stdout.write(s);

export const TRACE_HELP =
  "trace the kernel's TCP events on the lab's hosts (bpftrace, as root): state changes, retransmissions, resets, drops with their reason";
export const CAPTURE_HELP = "capture the lab port's packets in the loadgen host (tcpdump) and turn them into per-connection timelines (tshark)";
