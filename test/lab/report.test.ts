// report.html in headless Chromium (Debian's chromium, driven by puppeteer-core): it opens
// from disk with nothing fetched, draws every chart without a console error, and the numbers
// in its charts and tables are the point records' numbers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import puppeteer, { type Browser } from 'puppeteer-core';
import type { PointRecord } from '../../lab/record.js';

const CLI = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium';
const WORK = mkdtempSync(join(tmpdir(), 'tcplab-report-'));

let dir = '';
let recs: PointRecord[] = [];
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (or set CHROMIUM=/path/to/chrome)`);
  const f = join(WORK, 'backlog.yaml');
  writeFileSync(
    f,
    'runtime: netns\nscenario: {name: backlog, options: {extraClients: 2, holdMs: 800}}\nsweep:\n  matrix:\n    server.backlog: [4, 8]\n    server.sysctls.net.core.somaxconn: [6, 64]\n',
  );
  const r = await execa(process.execPath, [CLI, 'sweep', f], { reject: false, cwd: WORK });
  expect(r.exitCode, r.stderr).toBe(0);
  dir = join(WORK, r.stdout.trim());
  recs = readdirSync(join(dir, 'points'))
    .sort()
    .map((x) => JSON.parse(readFileSync(join(dir, 'points', x), 'utf8')) as PointRecord);
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
}, 120_000);

afterAll(async () => {
  await browser?.close();
});

describe('report.html', () => {
  it('`lab report DIR` writes both reports and prints their paths', async () => {
    const r = await execa(process.execPath, [CLI, 'report', dir], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([join(dir, 'report.md'), join(dir, 'report.html')]);
    const bad = await execa(process.execPath, [CLI, 'report', join(WORK, 'nope')], { reject: false });
    expect([bad.exitCode, bad.stderr.trim()]).toEqual([2, `lab report: ${join(WORK, 'nope')}: not a sweep folder (no points/)`]);
  });

  it('renders in headless Chromium: charts drawn, no console errors, nothing fetched, numbers = records', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('request', (q) => requests.push(q.url()));
    const url = pathToFileURL(join(dir, 'report.html')).href;
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForSelector('body[data-charts-drawn]', { timeout: 10_000 });
    expect(errors).toEqual([]);
    expect(requests).toEqual([url]); // self-contained: the page itself and nothing else

    // 4 backlog quantities + the Recv-Q series, each a Chart.js chart with ink on its canvas.
    const charts = await page.evaluate(() => {
      const C = (
        window as unknown as {
          Chart: {
            getChart(c: HTMLCanvasElement):
              | {
                  config: { options: { plugins: { title: { text: string } } } };
                  data: { labels?: string[]; datasets: Array<{ label: string; data: unknown[] }> };
                }
              | undefined;
          };
        }
      ).Chart;
      return [...document.querySelectorAll('canvas')].map((c) => {
        const chart = C.getChart(c);
        const px = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        let ink = 0;
        for (let i = 3; i < px.length; i += 4) if (px[i]! > 0) ink++;
        return {
          title: chart?.config.options.plugins.title.text,
          labels: chart?.data.labels,
          datasets: chart?.data.datasets.map((d) => ({ label: d.label, data: d.data })),
          ink,
        };
      });
    });
    expect(await page.$eval('body', (b) => b.dataset['chartsDrawn'])).toBe('5');
    expect(charts.map((c) => c.title)).toEqual([
      'accept queue limit (Send-Q)',
      'accept queue peak (Recv-Q)',
      'handshakes completed',
      'clients left in SYN-SENT',
      'server accept queue (Recv-Q) over time',
    ]);
    for (const c of charts) expect(c.ink, c.title).toBeGreaterThan(1000);

    // Send-Q against backlog, a bar per somaxconn, the prediction beside it: the records' numbers.
    const sendQ = charts[0]!;
    expect(sendQ.labels).toEqual(['4', '8']);
    const rec = (b: number, s: number) =>
      recs.find((p) => p.settings['server.backlog'] === b && p.settings['server.sysctls.net.core.somaxconn'] === s)!;
    expect(sendQ.datasets).toEqual([
      { label: 'somaxconn=6', data: [rec(4, 6), rec(8, 6)].map((p) => p.hosts['server']!.series.summary.listener!.sendQ) },
      { label: 'somaxconn=6 (predicted)', data: [4, 6] },
      { label: 'somaxconn=64', data: [rec(4, 64), rec(8, 64)].map((p) => p.hosts['server']!.series.summary.listener!.sendQ) },
      { label: 'somaxconn=64 (predicted)', data: [4, 8] },
    ]);
    expect(sendQ.datasets![0]!.data).toEqual([4, 6]);
    // The series chart has a line per point.
    expect(charts[4]!.datasets!.map((d) => d.label.split(' ')[0])).toEqual(recs.map((p) => p.id));

    // The verdict table: a row per point and rule, the records' values.
    const rows = await page.$$eval('tr.pass, tr.fail, tr.inconclusive', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
    );
    expect(rows).toEqual(
      recs.flatMap((p) =>
        p.scenario.verdicts.map((v) => [
          p.id,
          Object.entries(p.settings)
            .map(([k, x]) => `${k}=${x}`)
            .join(', '),
          v.rule,
          String(v.predicted),
          String(v.observed),
          v.verdict,
          v.reason,
        ]),
      ),
    );
    // Links to the raw reports resolve to files beside the page.
    const links = await page.$$eval('a', (as) => as.map((a) => a.getAttribute('href')!));
    expect(links.length).toBeGreaterThan(0);
    for (const l of links) expect(existsSync(join(dir, l)), l).toBe(true);
    await page.close();
  }, 60_000);
});
