// A corpus of malformed and hostile inputs. Each gets the right status (then a
// close) or just a close, and the server keeps serving the next client.
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { DESIGNS, useServer } from '../helpers/server.js';
import { describeUring } from '../helpers/uring.js';
import { exchange, GET, OK_BYTES, parseResponses } from '../helpers/http.js';

interface Case {
  name: string;
  send: Array<string | Buffer>;
  /** Expected statuses in order; [] means: no answer, just a close. */
  expect: number[] | ((statuses: number[]) => boolean);
  endAfterWrite?: boolean;
}

const H = 'Host: lab\r\n';
const cases: Case[] = [
  { name: 'garbage line', send: ['garbage\r\n\r\n'], expect: [400] },
  { name: 'binary junk with NULs', send: [Buffer.from([0, 1, 2, 0x20, 0xff, 0x0d, 0x0a, 0x0d, 0x0a])], expect: [400] },
  { name: 'NUL inside a header value', send: [`GET / HTTP/1.1\r\nX: a\0b\r\n\r\n`], expect: [400] },
  { name: 'bare LF line ends', send: ['GET / HTTP/1.1\nHost: lab\n\n'], expect: [400] },
  { name: 'bare LF after a good line', send: [`GET / HTTP/1.1\r\n${H}X: y\n\r\n`], expect: [400] },
  { name: 'no CRLF at all, then half-close', send: ['GET / HTTP/1.1 Host: lab'], expect: [], endAfterWrite: true },
  { name: 'no CRLF at all, 20 KB', send: ['G'.repeat(20_000)], expect: [431] },
  { name: '100 KB header line', send: [`GET / HTTP/1.1\r\nX-Big: ${'b'.repeat(100_000)}\r\n\r\n`], expect: [431] },
  { name: '10,000 headers', send: ['GET / HTTP/1.1\r\n' + 'X-A: b\r\n'.repeat(10_000) + '\r\n'], expect: [431] },
  { name: '101 small headers (count limit)', send: ['GET / HTTP/1.1\r\n' + 'A: b\r\n'.repeat(101) + '\r\n'], expect: [431] },
  { name: 'bad method characters', send: ['G@T / HTTP/1.1\r\n\r\n'], expect: [400] },
  { name: 'unknown method token', send: ['BREW / HTTP/1.1\r\n\r\n'], expect: [501] },
  { name: 'lower-case method (methods are case-sensitive)', send: ['get / HTTP/1.1\r\n\r\n'], expect: [501] },
  { name: 'unsupported version', send: ['GET / HTTP/9.9\r\n\r\n'], expect: [505] },
  { name: 'HTTP/2 preface', send: ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'], expect: [505] },
  { name: 'malformed version', send: ['GET / HTTP/1.1x\r\n\r\n'], expect: [400] },
  { name: 'wrong protocol name', send: ['GET / FTP/1.1\r\n\r\n'], expect: [400] },
  { name: 'HTTP/0.9 request line', send: ['GET /\r\n\r\n'], expect: [400] },
  { name: 'two spaces after the method', send: ['GET  / HTTP/1.1\r\n\r\n'], expect: [400] },
  { name: 'missing request target', send: ['GET HTTP/1.1\r\n\r\n'], expect: [400] },
  { name: 'DEL in the request target', send: ['GET /\x7f HTTP/1.1\r\n\r\n'], expect: [400] },
  { name: 'obs-fold continuation line', send: [`GET / HTTP/1.1\r\nX: a\r\n  b\r\n\r\n`], expect: [400] },
  { name: 'space before the colon', send: ['GET / HTTP/1.1\r\nHost : lab\r\n\r\n'], expect: [400] },
  { name: 'header line without a colon', send: ['GET / HTTP/1.1\r\nNoColonHere\r\n\r\n'], expect: [400] },
  { name: 'empty header name', send: ['GET / HTTP/1.1\r\n: x\r\n\r\n'], expect: [400] },
  { name: 'lone CR inside a value', send: ['GET / HTTP/1.1\r\nX: a\rb\r\n\r\n'], expect: [400] },
  { name: 'non-numeric Content-Length', send: [`POST / HTTP/1.1\r\n${H}Content-Length: abc\r\n\r\n`], expect: [400] },
  { name: 'negative Content-Length', send: [`POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`], expect: [400] },
  { name: 'conflicting Content-Lengths', send: [`POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`], expect: [400] },
  { name: 'huge Content-Length', send: [`POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n`], expect: [400] },
  { name: 'Content-Length with Transfer-Encoding (smuggling)', send: [`POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`], expect: [400] },
  { name: 'chunked body (not implemented)', send: [`POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`], expect: [501] },
  { name: 'a good request, then garbage in the same write', send: [GET + 'junk\r\n\r\n' + GET], expect: [200, 400] },
  { name: 'truncated head, then closed', send: ['GET / HTTP/1.1\r\nHost: la'], expect: [], endAfterWrite: true },
  { name: 'truncated body, then closed', send: ['POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc'], expect: [], endAfterWrite: true },
  { name: 'only CRLFs, then closed', send: ['\r\n'.repeat(500)], expect: [], endAfterWrite: true },
  // RFC 9112/9110 conformance.
  { name: 'two Host headers', send: ['GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'], expect: [400] },
  { name: 'two Host headers, the same value', send: ['GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n'], expect: [400] },
  { name: 'HTTP/1.2 is served as 1.1 (keep-alive, two answers)', send: [`GET / HTTP/1.2\r\n${H}\r\nGET / HTTP/1.9\r\n${H}Connection: close\r\n\r\n`], expect: [200, 200] },
  { name: 'HTTP/2.0 request line', send: [`GET / HTTP/2.0\r\n${H}\r\n`], expect: [505] },
  { name: 'a terabyte Content-Length (over the 1 MiB body limit)', send: [`POST / HTTP/1.1\r\n${H}Content-Length: 1099511627776\r\n\r\n`], expect: [413] },
  { name: 'Content-Length one over the body limit', send: [`POST / HTTP/1.1\r\n${H}Content-Length: 1048577\r\n\r\n`], expect: [413] },
  { name: '64 KB of random bytes', send: [randomBytes(65536)], expect: (s) => s.length === 1 && [400, 431].includes(s[0]!) },
];

/** Sends one case and checks its answer, the close, and that the next client is served. */
async function check(port: number, c: Case): Promise<void> {
  const r = await exchange(port, c.send, { endAfterWrite: c.endAfterWrite, timeoutMs: 3000 });
  const statuses = parseResponses(r.data).map((x) => x.status);
  if (typeof c.expect === 'function') expect(c.expect(statuses), `statuses ${statuses}`).toBe(true);
  else expect(statuses).toEqual(c.expect);
  // Every case ends with the server closing the connection, never with a hang.
  expect(r.ended || r.reset, 'the server closed the connection').toBe(true);
  // And the server still serves the next client.
  const next = await exchange(port, [GET], { untilBytes: OK_BYTES });
  expect(parseResponses(next.data).map((x) => x.status)).toEqual([200]);
}

// The whole corpus on the parser every design shares (native/src/http.cc), through the single
// reactor: what a design adds is how it reads, answers and closes, checked below per design.
describe('malformed input, the shared parser (single)', () => {
  const fixture = useServer({});
  it('has at least 20 cases', () => expect(cases.length).toBeGreaterThanOrEqual(20));
  for (const c of cases) it(c.name, () => check(fixture.port(), c));

  it('counts every error answer by its status', async () => {
    const { Server } = await import('../../native/index.js');
    const s = new Server({ host: '127.0.0.1', port: 0 });
    const { port } = await s.listen();
    try {
      for (const c of cases) await check(port, c);
      const t = s.stats().total;
      const want = (st: number) => cases.filter((c) => Array.isArray(c.expect) && c.expect.includes(st)).length;
      // 400 and 431: the random-bytes case adds one of either.
      expect(t.badRequests + t.headersTooLarge).toBe(want(400) + want(431) + 1);
      expect(t.badRequests).toBeGreaterThanOrEqual(want(400));
      expect(t.headersTooLarge).toBeGreaterThanOrEqual(want(431));
      expect(t.notImplemented).toBe(want(501));
      expect(t.versionNotSupported).toBe(want(505));
      expect(t.bodyTooLarge).toBe(want(413));
    } finally {
      await s.close();
    }
  });
});

// Per design: an error answer then a close, a close without an answer, an oversized head, and
// a good request after garbage in the same read, each followed by a served client.
const PER_DESIGN = ['garbage line', 'truncated head, then closed', '100 KB header line', 'a good request, then garbage in the same write'];

for (const [name, options] of DESIGNS)
  describeUring(options.io === 'io_uring')(`malformed input (${name})`, () => {
    const fixture = useServer(options);
    for (const n of PER_DESIGN) {
      const c = cases.find((x) => x.name === n)!;
      it(n, () => check(fixture.port(), c));
    }
  });
