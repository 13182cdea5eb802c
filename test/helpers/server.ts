// A reactor on an ephemeral loopback port for the duration of a test file.
import { afterAll, beforeAll } from 'vitest';
import { Server, type Server as ServerT, type ServerOptions } from '../../native/index.js';

export function useServer(options: ServerOptions = {}): { server: () => ServerT; port: () => number } {
  let server: ServerT;
  let port = 0;
  beforeAll(async () => {
    server = new Server({ host: '127.0.0.1', port: 0, ...options });
    ({ port } = await server.listen());
  });
  afterAll(async () => {
    await server.close();
  });
  return { server: () => server, port: () => port };
}

/**
 * The designs the HTTP suites run on: the single reactor (on epoll and on io_uring, and
 * reuseport on io_uring with a batch window), the reactor designs of more than one
 * loop that the suites did not cover (reactors with a worker pool, reactors in processes), and
 * each blocking design (native/src/blocking.h), whose connections are served with blocking
 * reads and writes. The io_uring ones are skipped (and counted so) where io_uring is refused:
 * use `describeUring(options.io === 'io_uring')` for each.
 */
export const DESIGNS: Array<[string, ServerOptions]> = [
  ['single', {}],
  ['single, io_uring', { io: 'io_uring' }],
  ['reuseport ×2, io_uring, batch 200 µs', { model: 'reuseport', threads: 2, io: 'io_uring', uringBatchUs: 200 }],
  ['reactors+workers ×2', { model: 'reactors+workers', threads: 2 }],
  ['reactor-procs ×3', { model: 'reactor-procs', threads: 3 }],
  ['iterative', { model: 'iterative' }],
  ['fork', { model: 'fork' }],
  ['thread', { model: 'thread' }],
  ['prethread ×4, share accept', { model: 'prethread', threads: 4 }],
  ['prethread ×4, share exclusive', { model: 'prethread', threads: 4, share: 'exclusive' }],
  ['prefork ×3', { model: 'prefork', threads: 3 }],
];
