// One connection, one `GET /` (with `Connection: close` when the server is to close first);
// resolves once the connection is closed: null when a 200 came, else an error code
// (ECONNREFUSED, EADDRNOTAVAIL, NO_ANSWER …). The client programs of timewait and herd use it.
import { connect } from 'node:net';

/** closer: who closes first once the answer is in ("server": the request asks it to). */
export function requestOnce(host: string, port: number, closer: 'client' | 'server'): Promise<string | null> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let buf = '';
    let done = false;
    const finish = (err: string | null) => {
      if (done) return;
      done = true;
      resolve(err);
    };
    s.setNoDelay(true);
    s.on('connect', () => s.write(`GET / HTTP/1.1\r\nHost: lab\r\n${closer === 'server' ? 'Connection: close\r\n' : ''}\r\n`));
    s.on('data', (d) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = Number(/content-length:\s*(\d+)/i.exec(buf)?.[1] ?? 0);
      if (buf.length < end + 4 + len) return;
      // The answer is in. The client closes first, or waits for the server's FIN.
      if (closer === 'client') s.end();
    });
    s.on('end', () => s.end());
    s.on('close', () => finish(buf.startsWith('HTTP/1.1 200') ? null : 'NO_ANSWER'));
    s.on('error', (err: NodeJS.ErrnoException) => {
      s.destroy();
      finish(err.code ?? 'ERROR');
    });
  });
}
