// Raw-socket HTTP helpers for the tests: exact bytes in, exact bytes out.
import { connect, type Socket } from 'node:net';

export interface Exchange {
  data: Buffer;
  /** The server sent FIN (we saw 'end'). */
  ended: boolean;
  /** The connection was reset. */
  reset: boolean;
  /** ms from the last write to 'end' (or -1). */
  endAfterMs: number;
}

export interface ExchangeOptions {
  /** Wait this long between chunks (ms). */
  gapMs?: number;
  /** Half-close our side after writing. */
  endAfterWrite?: boolean;
  /** Give up waiting for the server after this long. */
  timeoutMs?: number;
  /** Resolve as soon as this many bytes arrived (the server need not close). */
  untilBytes?: number;
  /** Resolve as soon as what arrived so far satisfies this (the server need not close). */
  until?: (data: Buffer) => boolean;
  host?: string;
}

export function open(port: number, host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Writes chunks and collects the answer until the server closes, untilBytes arrive, until() holds, or timeout. */
export async function exchange(port: number, chunks: Array<string | Buffer>, opts: ExchangeOptions = {}): Promise<Exchange> {
  const sock = await open(port, opts.host);
  sock.setNoDelay(true);
  const got: Buffer[] = [];
  let size = 0;
  let lastWrite = Date.now();
  return new Promise((resolve) => {
    const result: Exchange = { data: Buffer.alloc(0), ended: false, reset: false, endAfterMs: -1 };
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      result.data = Buffer.concat(got);
      sock.destroy();
      resolve(result);
    };
    const timer = setTimeout(finish, opts.timeoutMs ?? 3000);
    sock.on('data', (b: Buffer) => {
      got.push(b);
      size += b.length;
      if (opts.untilBytes !== undefined && size >= opts.untilBytes) finish();
      else if (opts.until?.(Buffer.concat(got))) finish();
    });
    sock.on('end', () => {
      result.ended = true;
      result.endAfterMs = Date.now() - lastWrite;
      finish();
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET') result.reset = true;
      finish();
    });
    void (async () => {
      for (const c of chunks) {
        if (done) return;
        sock.write(c);
        lastWrite = Date.now();
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
      if (opts.endAfterWrite) sock.end();
    })();
  });
}

export interface Response {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Splits a byte stream of responses; bodies by Content-Length (HEAD answers: pass the request kinds). */
export function parseResponses(buf: Buffer, headFlags: boolean[] = []): Response[] {
  const out: Response[] = [];
  let off = 0;
  const text = buf.toString('latin1');
  while (off < text.length) {
    const end = text.indexOf('\r\n\r\n', off);
    if (end < 0) throw new Error(`incomplete response head at byte ${off}: ${JSON.stringify(text.slice(off, off + 80))}`);
    const lines = text.slice(off, end).split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(lines[0] ?? '');
    if (!m) throw new Error(`bad status line ${JSON.stringify(lines[0])}`);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    const len = headFlags[out.length] ? 0 : Number(headers['content-length'] ?? 0);
    const body = text.slice(end + 4, end + 4 + len);
    if (body.length < len) throw new Error('incomplete body');
    out.push({ status: Number(m[1]), headers, body });
    off = end + 4 + len;
  }
  return out;
}

export const GET = 'GET / HTTP/1.1\r\nHost: lab\r\n\r\n';
export const HEAD = 'HEAD / HTTP/1.1\r\nHost: lab\r\n\r\n';
/** The reactor's keep-alive answer; its Date line (IMF-fixdate, always 29 characters) is DATE_LINE's. */
export const DATE_LINE =
  /Date: (?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT\r\n/;
export const okAnswer = (date: string) =>
  `HTTP/1.1 200 OK\r\nDate: ${date}\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: keep-alive\r\n\r\nhello\n`;
export const OK_BYTES = Buffer.byteLength(okAnswer('Sun, 06 Nov 1994 08:49:37 GMT'));

/** Sends one GET and waits for one full answer on an open socket. */
export function request(sock: Socket, req = GET): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    let size = 0;
    const onData = (b: Buffer) => {
      got.push(b);
      size += b.length;
      if (size >= OK_BYTES) {
        sock.off('data', onData);
        sock.off('error', reject);
        resolve(Buffer.concat(got));
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.write(req);
  });
}
