/**
 * Issue 21 in a real browser (Debian's Chromium through playwright-core) against a real
 * `flowlens serve`: a capture from 2023 imported with `flowlens import` is on the landing page
 * without touching the range, the pages say which range they show, History, Host and Anomalies
 * share the range choice (presets, the whole data range, a custom range), and the notice of an
 * import made in the browser links to that capture's own range.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { sampleCapture, type SampleFlow } from './api-helpers.js';
import { chromiumMissing, screenshot, type BrowserSession, type ServeProcess } from './helpers/browser.js';
import { startWebSession, type WebSession } from './helpers/web-session.js';
import { runCli } from './helpers/cli.js';
import { LINKTYPE, byTime, tcpConversation, toFrames, ts } from './helpers/frames.js';
import { pcap, writeCapture } from './helpers/pcap-writer.js';

const skip = chromiumMissing();

/** 2019-05-01T10:00:00Z: a second capture, older than the first, on hosts 10.7.x.x. */
const OLDER = 1_556_704_800;

function olderCapture(path: string): void {
  const pkts = [];
  for (let i = 0; i < 3; i++) {
    pkts.push(
      ...tcpConversation({
        client: { ip: '10.7.0.1', port: 42000 + i },
        server: { ip: `10.7.1.${i + 1}`, port: 22 },
        start: ts(OLDER + i * 30),
        data: [
          { from: 'client', bytes: 500 },
          { from: 'server', bytes: 2000 },
        ],
      }),
    );
  }
  writeCapture(path, pcap({ linktype: LINKTYPE.ETHERNET }, toFrames(LINKTYPE.ETHERNET, byTime(pkts))));
}

async function nav(page: Page, name: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name, exact: true }).click();
}

const talker = (page: Page, ip: string) => page.getByTestId('top-talkers').getByRole('link', { name: ip, exact: true });

describe('web client: the data’s own range', { skip }, () => {
  let session: WebSession;
  let dir: string;
  let serve: ServeProcess;
  let b: BrowserSession;
  let page: Page;
  let flows: SampleFlow[];

  before(async () => {
    session = await startWebSession('flowlens-web-range-', async (d) => {
      dir = d;
      const sample = sampleCapture(join(dir, 'old.pcap'));
      flows = sample.flows;
      // Imported from the command line before the server starts, as a new user would.
      const r = await runCli(['import', '--db', join(dir, 'flows.duckdb'), '--no-progress', sample.path]);
      assert.equal(r.code, 0, r.stderr);
    });
    ({ serve, browser: b, page } = session);
  });

  after(() => session?.close());

  it('the landing page shows a 2023 capture without touching the range, and says which range', async () => {
    await page.goto(`${serve.base}/`);
    await talker(page, '10.0.0.1').waitFor({ timeout: 20_000 });
    assert.ok(await talker(page, '10.0.1.12').isVisible(), 'its largest server too');
    const shown = (await page.getByTestId('range-shown').first().textContent()) ?? '';
    assert.match(shown, /2023-11-14/, `the capture's date: ${shown}`);
    assert.match(shown, /default: the whole span of the latest import/, shown);
    assert.notEqual(((await page.getByTestId('top-apps').textContent()) ?? '').trim(), '', 'top applications from the capture');
    assert.equal(await page.locator('[data-range=default][aria-pressed=true]').count(), 1, 'the default range is the choice');
    // An application drills down into Explore: its hosts, over the same range.
    const tls = page.getByTestId('top-apps').getByRole('link', { name: 'TLS', exact: true });
    assert.match((await tls.getAttribute('href')) ?? '', /^#\/explore\?dims=HOST&.*f=APP%3ATLS.*&range=default$/);
    await screenshot(page, 'range-overview-default');
    assert.deepEqual(b.errors, []);
  });

  it('History lists every flow of the capture in the same default range, and downloads them', async () => {
    await nav(page, 'History');
    await page.waitForFunction(
      (n) => (document.querySelector('[data-testid=history-count]')?.textContent ?? '').startsWith(`${n} of ${n} flows`),
      flows.length,
      { timeout: 20_000 },
    );
    // Started shows the date of a flow not from today, whole (it was cut off).
    const started = page.locator('[data-testid=flow-table] button.row span[role=cell]').first();
    assert.match((await started.textContent()) ?? '', /^2023-11-14 \d\d:\d\d:\d\d$/);
    assert.ok(await started.evaluate((el) => el.scrollWidth <= el.clientWidth), 'the Started cell is not cut off');
    const [csv] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-csv').click()]);
    assert.match(csv.suggestedFilename(), /^flowlens-flows-20231114T\d{4}Z-20231114T\d{4}Z\.csv$/);
    const lines = readFileSync((await csv.path())!, 'utf8')
      .trimEnd()
      .split('\r\n');
    assert.equal(lines.length, flows.length + 1, 'a header and every flow');
    assert.match(lines[0], /^id,firstSeen,lastSeen,duration,/);
    const bytes = lines.slice(1).reduce((n, l) => n + Number(l.split(',')[16]), 0);
    assert.equal(
      bytes,
      flows.reduce((n, f) => n + f.clientBytes + f.serverBytes, 0),
      'the bytes column adds up to the capture',
    );
    await page.getByRole('main').getByLabel('Host', { exact: true }).fill('10.0.0.2');
    await page.waitForFunction(() => /^3 of 3 flows/.test(document.querySelector('[data-testid=history-count]')?.textContent ?? ''));
    const [json] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-json').click()]);
    const rows = JSON.parse(readFileSync((await json.path())!, 'utf8')) as { clientIp: string; serverPort: number }[];
    assert.deepEqual(
      rows.map((r) => [r.clientIp, r.serverPort]),
      [
        ['10.0.0.2', 53],
        ['10.0.0.2', 53],
        ['10.0.0.2', 53],
      ],
      'the filtered view',
    );
    await page.getByRole('main').getByLabel('Host', { exact: true }).fill('');
  });

  it('a host page opens on the same range and keeps a preset of the data’s last hour', async () => {
    await page.goto(`${serve.base}/#/host/10.0.0.1`);
    await page.getByTestId('host-peers').waitFor({ timeout: 20_000 });
    assert.equal(await page.getByTestId('host-peers').locator('tbody tr').count(), 13, '12 servers and the pinging host');
    await page.getByRole('main').locator('[data-range="1h"]').click();
    await page.waitForFunction(() => /last 1 hour of data held/.test(document.querySelector('[data-testid=range-shown]')?.textContent ?? ''));
    await page.getByTestId('host-peers').waitFor();
    assert.equal(await page.getByTestId('host-peers').locator('tbody tr').count(), 13);
  });

  it('a custom range chosen on Anomalies holds on Overview; the whole data range brings the capture back', async () => {
    await nav(page, 'Anomalies');
    await page.getByRole('main').locator('[data-range=custom]').click();
    await page.getByRole('main').getByLabel('From', { exact: true }).fill('2010-01-01T00:00');
    await page.getByRole('main').getByLabel('To', { exact: true }).fill('2010-01-02T00:00');
    await page.getByRole('main').getByRole('button', { name: 'Apply' }).click();
    await page.waitForFunction(() => /2010-01-01.*a custom range/.test(document.querySelector('[data-testid=range-shown]')?.textContent ?? ''));
    await nav(page, 'Overview');
    await page.getByText('No traffic in this range.').waitFor({ timeout: 10_000 });
    assert.equal(await page.getByTestId('top-talkers').count(), 0);
    await page.locator('[data-range=all]').click();
    await talker(page, '10.0.0.1').waitFor({ timeout: 10_000 });
    assert.match((await page.getByTestId('range-shown').textContent()) ?? '', /the whole data range/);
  });

  it('Explore: top hosts, a click drills down (a chip, the URL), another dimension, a stacked area, Back', async () => {
    await page.goto(`${serve.base}/#/explore?dims=HOST&metric=BYTES&limit=5&range=all`);
    const table = page.getByTestId('explore-table');
    await table.waitFor({ timeout: 20_000 });
    const firstKey = () => table.locator('tbody tr').first().locator('button.key').first();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=explore-table] tbody tr').length > 0);
    assert.equal((await firstKey().textContent())?.trim(), '10.0.0.1', 'the client of every HTTPS flow leads');
    assert.equal(await table.locator('tbody tr').count(), 5);
    await firstKey().click();
    await page.getByTestId('filters').getByText('10.0.0.1').waitFor();
    assert.match(decodeURIComponent(page.url()), /f=HOST:10\.0\.0\.1/);
    await page.getByTestId('dim-0').selectOption('SERVER');
    await page.waitForFunction(() => /dims=SERVER/.test(location.hash));
    await page.waitForFunction(() => (document.querySelector('[data-testid=explore-table] tbody tr button.key')?.textContent ?? '').trim() === '10.0.1.12');
    // The servers of 10.0.0.1 only: its 12 HTTPS servers and the pinging host (as the ICMP server).
    assert.equal(await table.locator('tbody tr').count(), 5);
    await page.getByTestId('limit').selectOption('20');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=explore-table] tbody tr').length === 13);
    await page.getByTestId('view-area').click();
    await page.locator('[data-testid=stacked-area] svg').waitFor({ timeout: 10_000 });
    await screenshot(page, 'explore-area');
    // A shared URL opens the same view.
    const shared = page.url();
    const other = await b.context.newPage();
    await other.goto(shared);
    await other.getByTestId('filters').getByText('10.0.0.1').waitFor({ timeout: 20_000 });
    await other.waitForFunction(() => document.querySelectorAll('[data-testid=explore-table] tbody tr').length === 13, null, { timeout: 10_000 });
    assert.equal(await other.locator('[data-testid=stacked-area] svg').count(), 1, 'the stacked area too');
    await other.close();
    // Remove the chip: every server again.
    await page.getByRole('button', { name: 'Remove filter Host 10.0.0.1' }).click();
    await page.waitForFunction(() => !/f=HOST/.test(decodeURIComponent(location.hash)));
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=explore-table] tbody tr').length === 14, null, { timeout: 10_000 });
    await page.goBack();
    await page.getByTestId('filters').waitFor();
    assert.deepEqual(b.errors, []);
  });

  it('an import made in the browser links to its own range', async () => {
    await nav(page, 'Overview');
    await page.locator('[data-range=default]').click();
    const path = join(dir, 'older.pcap');
    olderCapture(path);
    await page.getByTestId('import-input').setInputFiles(path);
    const link = page.getByTestId('import-range');
    await link.waitFor({ timeout: 20_000 });
    assert.match((await page.getByTestId('imports').textContent()) ?? '', /done: 3 flows/);
    // The default range stays on the newest data (2023): the 2019 capture is not in it.
    assert.ok(await talker(page, '10.0.0.1').isVisible());
    await link.click();
    await talker(page, '10.7.0.1').waitFor({ timeout: 10_000 });
    assert.equal(await talker(page, '10.0.0.1').count(), 0, 'only the 2019 capture in its range');
    assert.match((await page.getByTestId('range-shown').textContent()) ?? '', /2019-05-01 \d\d:\d\d:00 – 2019-05-01 .*a custom range/);
    await screenshot(page, 'range-overview-import-link');
    // At phone size the host search stays (it disappeared below 640 px).
    await page.setViewportSize({ width: 390, height: 844 });
    assert.ok(await page.locator('#find-host').isVisible(), 'host search at 390 px');
    assert.deepEqual(b.errors, []);
  });
});
