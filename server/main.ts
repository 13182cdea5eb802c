#!/usr/bin/env node
// The process the lab runs in the server host: the native reactor plus the control API.
// Prints one JSON line {"event":"listening",...} on stdout when both are up.
// SIGTERM/SIGINT: clean stop, exit 0. Bad flags or a port clash: one line on stderr, exit 2.
import { Command } from 'commander';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import { InputError, LabError } from '../core/errors.js';
import { addServeOptions, refuseRepeats, serveOptions, type ServeOptions } from './options.js';

export class UsageError extends InputError {}

export async function serve(opts: ServeOptions): Promise<void> {
  // Signal handlers go in before anything starts and before readiness is announced:
  // a SIGTERM at any point after this stops cleanly.
  let onStop!: () => void;
  const stopRequested = new Promise<void>((resolve) => (onStop = resolve));
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  const { Server } = await import('../native/index.js');
  const { createControlServer } = await import('./control.js');
  let server: InstanceType<typeof Server> | undefined;
  let control: ReturnType<typeof createControlServer> | undefined;
  try {
    try {
      server = new Server({
        host: opts.host,
        port: opts.port,
        backlog: opts.backlog,
        model: opts.model,
        threads: opts.threads,
        trigger: opts.trigger,
        io: opts.io,
        uringBatchUs: opts.uringBatchUs,
        share: opts.share,
        workUs: opts.workUs,
        work: opts.work,
        idleTimeoutMs: opts.idleTimeoutMs,
        maxBodyBytes: opts.maxBodyBytes,
        headerTimeoutMs: opts.headerTimeoutMs,
        bodyTimeoutMs: opts.bodyTimeoutMs,
        maxConnections: opts.maxConnections,
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const { port } = await server.listen().catch((err: Error) => {
      throw new UsageError(err.message);
    });
    control = createControlServer(server);
    control.listen(opts.controlPort, opts.controlHost);
    await once(control, 'listening').catch((err: NodeJS.ErrnoException) => {
      throw new UsageError(`control API: ${err.message}`);
    });
    const addr = control.address();
    const controlPort = typeof addr === 'object' && addr ? addr.port : opts.controlPort;
    process.stdout.write(
      JSON.stringify({
        event: 'listening',
        pid: process.pid,
        host: opts.host,
        port,
        controlHost: opts.controlHost,
        controlPort,
        model: opts.model,
        threads: opts.threads,
        trigger: opts.trigger,
        io: opts.io,
        ...(opts.uringBatchUs ? { uringBatchUs: opts.uringBatchUs } : {}),
        share: opts.share,
        backlog: opts.backlog,
      }) + '\n',
    );
    // A loop that stops on an error (epoll_wait failing) says so on stderr and in stats(): the
    // server then stops too, with that line, rather than serve on with a dead loop.
    let watch: NodeJS.Timeout | undefined;
    const loopFailed = new Promise<never>((_, reject) => {
      watch = setInterval(() => {
        const failed = server!.failures();
        if (failed.length) reject(new LabError(`the reactor stopped: ${failed.join('; ')}`, 1));
      }, 200);
    });
    await Promise.race([stopRequested, loopFailed]).finally(() => clearInterval(watch));
    // The last word: counters and this process's CPU time, for the lab's record.
    const { processCpu } = await import('./control.js');
    process.stdout.write(JSON.stringify({ event: 'stopped', stats: server.stats(), cpu: processCpu() }) + '\n');
  } finally {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    if (control?.listening) {
      control.closeAllConnections();
      control.close();
    }
    await server?.close();
  }
}

/** Runs `main.js [flags]`; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  // A reader of the event lines that went away (`… | head -1`) is not the server's failure:
  // it serves on, and says nothing more there.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
  const cmd = refuseRepeats(addServeOptions(new Command('tcplab-server')))
    .description('Run the tcplab reactor and its control API')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s.split('\n')[0] + '\n') });
  try {
    cmd.parse(argv);
  } catch (err) {
    if (err instanceof LabError) {
      process.stderr.write(`tcplab-server: ${err.message}\n`);
      return err.exitCode;
    }
    const code = (err as { code?: string }).code;
    return code === 'commander.helpDisplayed' || code === 'commander.version' ? 0 : 2;
  }
  try {
    await serve(serveOptions(cmd.opts()));
    return 0;
  } catch (err) {
    if (err instanceof LabError) {
      process.stderr.write(`tcplab-server: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv);
}
