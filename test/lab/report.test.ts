// report.html in headless Chromium (Debian's chromium, driven by puppeteer-core): it opens
// from disk with nothing fetched, draws every chart without a console error, and the numbers
// in its charts and tables are the point records' numbers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import puppeteer, { type Browser } from 'puppeteer-core';
import type { PointRecord } from '../../lab/pipeline/record.js';

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

  /** Opens a report page at a width; its charts as Chart.js sees them, legends included. */
  async function open(reportDir: string, width: number) {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.setViewport({ width, height: 900 });
    await page.goto(pathToFileURL(join(reportDir, 'report.html')).href, { waitUntil: 'load' });
    await page.waitForSelector('body[data-charts-drawn]', { timeout: 10_000 });
    const charts = await page.evaluate(() => {
      type Box = { left: number; top: number; width: number; height: number };
      const C = (
        window as unknown as {
          Chart: {
            getChart(c: HTMLCanvasElement):
              | {
                  width: number;
                  height: number;
                  data: { labels?: unknown[]; datasets: Array<{ label: string }> };
                  options: { scales?: { x?: { title?: { text?: string } } } };
                  legend: { legendHitBoxes: Box[]; legendItems: Array<{ text: string }> };
                }
              | undefined;
          };
        }
      ).Chart;
      return [...document.querySelectorAll('canvas')].map((c) => {
        const ch = C.getChart(c)!;
        return {
          width: ch.width,
          height: ch.height,
          labels: ch.data.labels,
          xTitle: ch.options.scales?.x?.title?.text,
          datasets: ch.data.datasets.map((d) => d.label),
          legend: ch.legend.legendItems.map((i) => i.text),
          boxes: ch.legend.legendHitBoxes,
        };
      });
    });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    const headlines = await page.$$eval('ol.headlines li', (li) => li.map((x) => x.textContent ?? ''));
    const shot = join(reportDir, `screenshot-${width}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    await page.close();
    return { errors, charts, overflow, headlines, shot };
  }

  it('a zipped sweep: the zipped tuple on the x-axis, a headline per point, each tool once; readable at phone and desktop widths', async () => {
    const f = join(WORK, 'zip.yaml');
    writeFileSync(
      f,
      'runtime: netns\nscenario: {name: backlog, options: {extraClients: 1, holdMs: 500}}\nsweep:\n  zip:\n    server.backlog: [4, 8, 16]\n    server.sysctls.net.core.somaxconn: [6, 64, 8]\n',
    );
    const r = await execa(process.execPath, [CLI, 'sweep', f], { reject: false, cwd: WORK });
    expect(r.exitCode, r.stderr).toBe(0);
    const zdir = join(WORK, r.stdout.trim());
    for (const width of [390, 1280]) {
      const v = await open(zdir, width);
      expect(v.errors).toEqual([]);
      // No sideways scrolling: charts shrink to the page, wide tables scroll inside their box.
      expect(v.overflow, `width ${width}`).toBeLessThanOrEqual(0);
      expect(statSync(v.shot).size).toBeGreaterThan(10_000);
      const sendQ = v.charts[0]!;
      expect(sendQ.xTitle).toBe('backlog · somaxconn');
      expect(sendQ.labels).toEqual([
        ['backlog=4', 'somaxconn=6'],
        ['backlog=8', 'somaxconn=64'],
        ['backlog=16', 'somaxconn=8'],
      ]);
      // One legend entry for measured + predicted.
      expect(sendQ.legend).toEqual(['measured']);
      expect(v.headlines).toHaveLength(3);
      expect(v.headlines[0]).toMatch(
        /^p001-r1 server\.backlog=4, server\.sysctls\.net\.core\.somaxconn=6: limit 4 = min\(backlog 4, somaxconn 6\): Send-Q 4, 5 of 6 clients connected, 1 left in SYN-SENT; 5 PASS$/,
      );
      expect(v.headlines[2]).toContain('limit 8 = min(backlog 16, somaxconn 8): Send-Q 8');
    }
    const md = readFileSync(join(zdir, 'report.md'), 'utf8');
    expect(md).toContain('## What happened, point by point');
    // Each tool once, with the hosts that have it.
    const html = readFileSync(join(zdir, 'report.html'), 'utf8');
    const env = JSON.parse(readFileSync(join(zdir, 'environment.json'), 'utf8')) as { tools: Record<string, Record<string, string>> };
    // Each tool it ran once (Node, ss: the backlog scenario runs no load tool), and none it did not run.
    for (const tool of new Set(Object.values(env.tools).flatMap((t) => Object.keys(t))))
      expect(html.match(new RegExp(`<td>${tool} \\(`, 'g')) ?? [], tool).toHaveLength(['node', 'ss'].includes(tool) ? 1 : 0);
  }, 120_000);

  it("a one-point `lab up`: a table of its numbers, not bars of one; each host's sockets per state over time; the load's latency distribution (autocannon's own percentiles); only the tools it ran", async () => {
    const out = join(WORK, 'up');
    const r = await execa(process.execPath, [CLI, 'up', '--runtime', 'netns', '--duration', '2', '--connections', '8', '--output', out], {
      reject: false,
      cwd: WORK,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const [run] = readdirSync(out);
    const udir = join(out, run!);
    const [rec] = readdirSync(join(udir, 'points')).map((x) => JSON.parse(readFileSync(join(udir, 'points', x), 'utf8')) as PointRecord);
    const v = await open(udir, 1280);
    expect(v.errors).toEqual([]);
    const titles = await (async () => {
      const page = await browser.newPage();
      await page.goto(pathToFileURL(join(udir, 'report.html')).href, { waitUntil: 'load' });
      await page.waitForSelector('body[data-charts-drawn]', { timeout: 10_000 });
      const got = await page.evaluate(() => {
        const C = (
          window as unknown as {
            Chart: {
              getChart(c: HTMLCanvasElement): {
                config: { options: { plugins: { title: { text: string } } } };
                data: { datasets: Array<{ data: unknown[] }> };
              };
            };
          }
        ).Chart;
        return [...document.querySelectorAll('canvas')].map((c) => ({
          title: C.getChart(c).config.options.plugins.title.text,
          data: C.getChart(c).data.datasets[0]!.data,
        }));
      });
      const numbers = await page.$$eval('h2 + table tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
      await page.close();
      return { got, numbers };
    })();
    const load = rec!.scenario.load!;
    expect(titles.got.map((c) => c.title)).toEqual([
      'server ESTAB over time',
      'server: sockets per state over time',
      'loadgen-1: sockets per state over time',
      `latency distribution (autocannon, ${load.result.requests} requests), ms`,
    ]);
    // p50, p75, p90, p95, p99, …: autocannon's own p50, p90 and p99 (the run's HDR histogram) among them.
    const lat = titles.got[3]!.data as number[];
    expect([lat[0], lat[2], lat[4]]).toEqual([load.result.latencyMs!.p50, load.result.latencyMs!.p90, load.result.latencyMs!.p99]);
    // The numbers table: the scenario's quantities, measured beside predicted.
    const rps = titles.numbers.find((row) => row[0] === 'requests/s');
    expect(rps?.[1]).toBe(String(load.result.rps));
    // The tools it ran: Node and ss (autocannon is a Node library); not ab, wrk, hping3 or nft.
    const html = readFileSync(join(udir, 'report.html'), 'utf8');
    expect(html).toMatch(/<td>node \(/);
    expect(html).toMatch(/<td>ss \(/);
    for (const t of ['ab', 'wrk', 'hping3', 'nft']) expect(html, t).not.toMatch(new RegExp(`<td>${t} \\(`));
    expect(html).toContain('<h1>tcplab point ');
  }, 120_000);

  it('no legend is cut off, however many groups: 12 bars per label', async () => {
    // The real records of the matrix sweep, as 48 points of a 4 × 12 matrix (the page only reads records).
    const big = join(WORK, 'many');
    mkdirSync(join(big, 'points'), { recursive: true });
    copyFileSync(join(dir, 'environment.json'), join(big, 'environment.json'));
    const somaxconns = [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 64];
    let n = 0;
    for (const b of [4, 8, 12, 16])
      for (const m of somaxconns) {
        const p = structuredClone(recs[n % recs.length]!);
        const id = `p${String(++n).padStart(3, '0')}-r1`;
        Object.assign(p, { id, point: id.slice(0, 4), settings: { 'server.backlog': b, 'server.sysctls.net.core.somaxconn': m } });
        p.config.sweep = { matrix: { 'server.backlog': [4, 8, 12, 16], 'server.sysctls.net.core.somaxconn': somaxconns }, zip: {} };
        writeFileSync(join(big, 'points', `${id}.json`), JSON.stringify(p));
      }
    const r = await execa(process.execPath, [CLI, 'report', big], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    for (const width of [390, 1280]) {
      const v = await open(big, width);
      expect(v.errors).toEqual([]);
      for (const c of v.charts.slice(0, 4)) {
        expect(c.legend).toHaveLength(12);
        expect(c.boxes).toHaveLength(12);
        for (const b of c.boxes) {
          expect(b.left).toBeGreaterThanOrEqual(0);
          expect(b.top).toBeGreaterThanOrEqual(0);
          expect(b.left + b.width).toBeLessThanOrEqual(c.width);
          expect(b.top + b.height).toBeLessThanOrEqual(c.height);
        }
      }
      // The series chart: a line per point, 48 legend entries, all inside.
      const series = v.charts[4]!;
      expect(series.legend).toHaveLength(48);
      for (const b of series.boxes) expect(b.top + b.height).toBeLessThanOrEqual(series.height);
    }
  }, 60_000);
});
