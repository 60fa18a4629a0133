/**
 * The web client in a real browser (Debian's Chromium through playwright-core) against a real
 * `flowlens serve`: the overview loads without console errors, importing captures (file picker
 * and drag and drop) makes flows appear live, filters narrow the table, a flow opens, history
 * pages through stored flows, a host page opens, anomalies show with their evidence (when the
 * detectors are wired in), and the connection indicator recovers after a server restart.
 * Screenshots of each page, laptop and phone sized, light and dark, go to test/artifacts/.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { chromiumMissing, ensureWebBuilt, openBrowser, screenshot, startServe, type BrowserSession, type ServeProcess } from './helpers/browser.js';
import { REPO_ROOT } from './helpers/cli.js';
import { byTime, icmpPing, ip, LINKTYPE, tcp, TCP_FLAGS, tcpConversation, toFrames, ts, udpExchange, type Frame, type TimedPacket } from './helpers/frames.js';
import { pcap, writeCapture } from './helpers/pcap-writer.js';

const skip = chromiumMissing();

/** Whether the aggregator runs the anomaly detectors (src/detect) on imports. */
const detectorsWired = (() => {
  try {
    return /DetectorSet/.test(readFileSync(join(REPO_ROOT, 'src', 'flow', 'aggregator.ts'), 'utf8'));
  } catch {
    return false;
  }
})();

const SCANNER = '10.66.0.66';

/**
 * A capture of the last few minutes on the 10.<net> network: HTTPS from .0.1 to eight servers,
 * DNS from .0.2, HTTP from .0.3, a ping, and (with `scan`) a port scan of 2000 ports from
 * 10.66.0.66 that the closed ports answer with RST (thousands of rows for the table).
 */
function capture(path: string, net: number, o: { scan?: boolean } = {}): { dns: number; flows: number } {
  const base = Math.floor(Date.now() / 1000) - 200;
  const a = (c: number, d: number) => `10.${net}.${c}.${d}`;
  const pkts: TimedPacket[] = [];
  let flows = 0;
  for (let i = 0; i < 8; i++, flows++) {
    pkts.push(
      ...tcpConversation({
        client: { ip: a(0, 1), port: 41000 + i },
        server: { ip: a(1, i + 1), port: 443 },
        start: ts(base + i * 15),
        data: [
          { from: 'client', bytes: 300 },
          { from: 'server', bytes: 4000 * (i + 1) },
        ],
      }),
    );
  }
  for (let i = 0; i < 3; i++, flows++) {
    pkts.push(
      ...udpExchange({
        client: { ip: a(0, 2), port: 53000 + i },
        server: { ip: a(2, 1), port: 53 },
        start: ts(base + 5 + i * 40),
        messages: [
          { from: 'client', bytes: 40 },
          { from: 'server', bytes: 160 },
        ],
      }),
    );
  }
  for (let i = 0; i < 2; i++, flows++) {
    pkts.push(
      ...tcpConversation({
        client: { ip: a(0, 3), port: 45000 + i },
        server: { ip: a(3, 1), port: 80 },
        start: ts(base + 20 + i * 30),
        data: [
          { from: 'client', bytes: 200 },
          { from: 'server', bytes: 20000 },
        ],
      }),
    );
  }
  pkts.push(...icmpPing({ client: a(0, 3), server: a(0, 1), start: ts(base + 60), count: 3 }));
  flows++;
  if (o.scan) {
    const target = a(1, 1);
    for (let port = 1; port <= 2000; port++, flows++) {
      const at = ts(base + 120) + BigInt(port) * 500_000n;
      pkts.push({
        ts: at,
        from: 'client',
        ip: ip({ src: SCANNER, dst: target, l4: tcp({ srcPort: 61000, dstPort: port, seq: 7000 + port, flags: TCP_FLAGS.SYN }) }),
      });
      pkts.push({
        ts: at + 200_000n,
        from: 'server',
        ip: ip({ src: target, dst: SCANNER, l4: tcp({ srcPort: port, dstPort: 61000, ack: 7001 + port, flags: TCP_FLAGS.RST | TCP_FLAGS.ACK }) }),
      });
    }
  }
  const frames: Frame[] = toFrames(LINKTYPE.ETHERNET, byTime(pkts));
  writeCapture(path, pcap({ linktype: LINKTYPE.ETHERNET }, frames));
  return { dns: 3, flows };
}

async function flowCount(page: Page): Promise<{ shown: number; total: number }> {
  const text = (await page.getByTestId('flow-count').textContent()) ?? '';
  const m = /([\d,]+) of ([\d,]+) flows/.exec(text);
  assert.ok(m, `flow count text: ${text}`);
  return { shown: Number(m[1].replace(/,/g, '')), total: Number(m[2].replace(/,/g, '')) };
}

async function waitForCount(
  page: Page,
  pred: (c: { shown: number; total: number }) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<{ shown: number; total: number }> {
  const end = Date.now() + timeoutMs;
  let last = { shown: -1, total: -1 };
  while (Date.now() < end) {
    last = await flowCount(page);
    if (pred(last)) return last;
    await page.waitForTimeout(100);
  }
  throw new Error(`timed out waiting for ${what}; last count ${JSON.stringify(last)}`);
}

/** Follows a link of the page navigation. */
async function nav(page: Page, name: string | RegExp): Promise<void> {
  await page
    .getByRole('navigation', { name: 'Pages' })
    .getByRole('link', { name, exact: typeof name === 'string' ? true : undefined })
    .click();
}

async function fill(page: Page, label: string, value: string): Promise<void> {
  await page.getByRole('main').getByLabel(label, { exact: true }).fill(value);
}

describe('web client in Chromium', { skip }, () => {
  let dir: string;
  let serve: ServeProcess;
  let b: BrowserSession;
  let page: Page;
  let sample: { dns: number; flows: number };
  const shots: string[] = [];
  const shot = async (name: string) => shots.push(await screenshot(page, name));

  const assertNoErrors = (when: string) => {
    assert.deepEqual(b.errors, [], `console errors ${when}`);
  };

  before(async () => {
    ensureWebBuilt();
    dir = mkdtempSync(join(tmpdir(), 'flowlens-web-'));
    serve = await startServe(dir);
    b = await openBrowser();
    page = b.page;
  });

  after(async () => {
    await b?.close();
    await serve?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (shots.length) console.log(`screenshots:\n${shots.join('\n')}`);
  });

  it('serves the client at / with content types and an SPA fallback, keeping /graphql and /health', async () => {
    const index = await fetch(`${serve.base}/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type') ?? '', /^text\/html/);
    const html = await index.text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    const css = /href="(\/assets\/[^"]+\.css)"/.exec(html)?.[1];
    assert.ok(script && css, 'index.html links the built script and stylesheet');
    assert.match((await fetch(serve.base + script)).headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match((await fetch(serve.base + css)).headers.get('content-type') ?? '', /^text\/css/);
    const deep = await fetch(`${serve.base}/some/page`);
    assert.equal(deep.status, 200);
    assert.match(await deep.text(), /<div id="app">/);
    assert.equal((await fetch(`${serve.base}/assets/missing.js`)).status, 404);
    assert.equal((await fetch(`${serve.base}/../package.json`)).status, 404);
    assert.equal((await fetch(`${serve.base}/health`)).status, 200);
    const gql = await fetch(`${serve.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ captureStatus { store { ok } } }' }),
    });
    assert.deepEqual(await gql.json(), { data: { captureStatus: { store: { ok: true } } } });
  });

  it('loads the overview with no console errors and a live connection', async () => {
    await page.goto(`${serve.base}/`);
    await page.locator('[data-testid=connection][data-status=online]').waitFor({ timeout: 15_000 });
    await page.getByTestId('capture-status').waitFor();
    await page.getByRole('heading', { name: 'Traffic' }).waitFor();
    await page.waitForTimeout(500);
    assertNoErrors('on loading the overview');
    await shot('overview-empty-laptop-light');
  });

  it('imports a capture chosen with the file picker; its flows appear live without a reload', async () => {
    await nav(page, 'Live flows');
    await page.getByRole('heading', { name: 'Live flows' }).waitFor();
    const path = join(dir, 'sample.pcap');
    sample = capture(path, 1, { scan: true });
    const navigations: string[] = [];
    page.on('framenavigated', (f) => navigations.push(f.url()));
    await page.getByTestId('import-input').setInputFiles(path);
    await waitForCount(page, (c) => c.total >= sample.flows, `${sample.flows} live flows`);
    await page.locator('[data-testid=imports] li[data-state=DONE]').waitFor({ timeout: 20_000 });
    assert.match((await page.getByTestId('imports').textContent()) ?? '', /done: [\d,]+ flows/);
    assert.deepEqual(navigations, [], 'no reload or navigation');
    // Virtualised: far fewer rows in the DOM than flows.
    const rendered = await page.locator('[data-testid=flow-table] button.row').count();
    assert.ok(rendered > 5 && rendered < 80, `rendered ${rendered} of ${sample.flows} rows`);
    // Scrolled to the end, the last rows are the ones in the DOM.
    await page.getByTestId('flow-table').evaluate((el) => (el.scrollTop = el.scrollHeight));
    await page.locator(`[data-testid=flow-table] button.row[aria-rowindex="${(await flowCount(page)).total + 1}"]`).waitFor({ timeout: 5000 });
    await page.getByTestId('flow-table').evaluate((el) => (el.scrollTop = 0));
    await page.waitForTimeout(300);
    await shot('flows-live-laptop-light');
    assertNoErrors('while importing');
  });

  it('imports a capture dropped on the page', async () => {
    const path = join(dir, 'dropped.pcap');
    const dropped = capture(path, 2);
    const before = (await flowCount(page)).total;
    const b64 = readFileSync(path).toString('base64');
    const dt = await page.evaluateHandle((data) => {
      const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      const t = new DataTransfer();
      t.items.add(new File([bytes], 'dropped.pcap', { type: 'application/vnd.tcpdump.pcap' }));
      return t;
    }, b64);
    await page.dispatchEvent('main', 'dragenter', { dataTransfer: dt });
    await page.dispatchEvent('main', 'dragover', { dataTransfer: dt });
    await page.dispatchEvent('main', 'drop', { dataTransfer: dt });
    await waitForCount(page, (c) => c.total >= before + dropped.flows, `${dropped.flows} more live flows`);
    await page.locator('[data-testid=imports] li[data-state=DONE]', { hasText: 'dropped.pcap' }).waitFor({ timeout: 20_000 });
    assertNoErrors('after a drop');
  });

  it('filters narrow the live table; pause freezes it; a row opens the flow', async () => {
    const all = await flowCount(page);
    await fill(page, 'Host', '10.1.0.2');
    await waitForCount(page, (c) => c.shown === sample.dns, 'the DNS client only');
    await fill(page, 'Port', '53');
    await waitForCount(page, (c) => c.shown === sample.dns, 'DNS by host and port');
    await fill(page, 'Host', '');
    // DNS in both captures, and the scanner's probe of port 53.
    await waitForCount(page, (c) => c.shown === 2 * sample.dns + 1, 'port 53 in both captures');
    await fill(page, 'Port', '');
    await waitForCount(page, (c) => c.shown === all.total, 'all again');
    // The application filter, with the label the table shows for the DNS flows (identified or tcp/udp port).
    await fill(page, 'Host', '10.1.0.2');
    await waitForCount(page, (c) => c.shown === sample.dns, 'the DNS client only');
    const dnsApp = ((await page.locator('[data-testid=flow-table] button.row span[role=cell]').nth(4).textContent()) ?? '').trim();
    assert.ok(dnsApp, 'the DNS flows have an app label');
    await fill(page, 'Host', '');
    await fill(page, 'App', dnsApp);
    await waitForCount(page, (c) => c.shown >= 2 * sample.dns && c.shown < all.total, `app ${dnsApp}`);
    await fill(page, 'App', '');
    await waitForCount(page, (c) => c.shown === all.total, 'all again');

    await page.getByTestId('pause').click();
    assert.match((await page.getByTestId('flow-count').textContent()) ?? '', /paused/);
    await page.getByTestId('pause').click();

    // Sort by bytes (descending) and open the largest flow.
    await page.getByRole('button', { name: 'Bytes', exact: true }).click();
    await page.waitForTimeout(400);
    const first = page.locator('[data-testid=flow-table] button.row').first();
    await first.click();
    const detail = page.getByTestId('flow-detail');
    await detail.waitFor();
    assert.match((await detail.textContent()) ?? '', /Server → client/);
    // #25: the flow's Community ID and Zeek's conn_state/history are in the detail.
    assert.match((await detail.getByTestId('flow-community-id').textContent()) ?? '', /^1:[A-Za-z0-9+/]{27}=$/);
    assert.match((await detail.getByTestId('flow-zeek').textContent()) ?? '', /^(S0|S1|SF|REJ|S2|S3|RSTO|RSTR|RSTOS0|RSTRH|SH|SHR|OTH)\b/);
    // #20: every field of the record is listed, from the definition, with its schema description.
    const allFields = detail.getByTestId('flow-all-fields');
    await allFields.locator('summary').click();
    const listed = await allFields.locator('dt').allTextContents();
    for (const field of ['zeekDuration', 'missedBytes', 'clientAsn', 'endReason', 'firstPackets'])
      assert.ok(listed.includes(field), `${field} in ${listed.join(' ')}`);
    assert.ok(!listed.some((k) => k.startsWith('__')), 'no __typename');
    assert.match((await allFields.locator('dt', { hasText: /^missedBytes$/ }).getAttribute('title')) ?? '', /gaps/);
    await shot('flow-detail-laptop-light');
    // Keyboard: Escape closes; rows are reachable with the arrow keys.
    await page.keyboard.press('Escape');
    await detail.waitFor({ state: 'detached' });
    await first.focus();
    await page.keyboard.press('ArrowDown');
    // The table moves the focus after Svelte's next tick, not within the key's handler.
    await page.waitForFunction(() => document.activeElement?.getAttribute('data-index') === '1', null, { timeout: 10_000 });
    assertNoErrors('filtering');
  });

  it('pages through stored flows in History', async () => {
    await nav(page, 'History');
    const count = page.getByTestId('history-count');
    await page.waitForFunction(
      () => /[1-9][\d,]* of [\d,]+ flows loaded/.test(document.querySelector('[data-testid=history-count]')?.textContent ?? ''),
      null,
      { timeout: 20_000 },
    );
    const text = (await count.textContent()) ?? '';
    const m = /([\d,]+) of ([\d,]+)/.exec(text)!;
    const total = Number(m[2].replace(/,/g, ''));
    assert.ok(total >= sample.flows, `stored flows: ${text}`);
    if (total > 500) {
      await page.getByTestId('load-more').click();
      await page.waitForFunction(
        (t) => (document.querySelector('[data-testid=history-count]')?.textContent ?? '').startsWith(t),
        `${Math.min(total, 1000).toLocaleString('en-US')} of`,
      );
    }
    await fill(page, 'Host', '10.1.0.3');
    await page.waitForFunction(() => /^\d of \d flows loaded/.test(document.querySelector('[data-testid=history-count]')?.textContent ?? ''), null, {
      timeout: 10_000,
    });
    assert.match((await count.textContent()) ?? '', /^3 of 3 /, 'HTTP twice and a ping');
    await shot('history-laptop-light');
    assertNoErrors('in History');
  });

  it('opens a host page from the top talkers', async () => {
    await nav(page, 'Overview');
    await page.getByTestId('top-talkers').waitFor({ timeout: 15_000 });
    await page.getByTestId('top-apps').waitFor();
    await page.waitForTimeout(800);
    await shot('overview-laptop-light');
    // Each talker says where it is (its records' country, AS and network): a private address here.
    const talker = page.getByTestId('top-talkers').locator('tr', { has: page.getByRole('link', { name: '10.1.0.1', exact: true }) });
    assert.equal(await talker.getByTestId('talker-place').textContent(), 'private');
    await page.getByTestId('top-talkers').getByRole('link', { name: '10.1.0.1', exact: true }).click();
    await page.waitForURL(/#\/host\/10\.1\.0\.1$/);
    await page.getByTestId('host-peers').waitFor({ timeout: 15_000 });
    const peers = await page.getByTestId('host-peers').locator('tbody tr').count();
    assert.ok(peers >= 8, `peers: ${peers}`);
    assert.match((await page.getByTestId('host-ports').textContent()) ?? '', /tcp\/443/);
    await page.waitForTimeout(500);
    await shot('host-laptop-light');
    assertNoErrors('on a host page');
  });

  it('shows the port scan as an anomaly with its evidence and flows', async (t) => {
    if (!detectorsWired) {
      t.skip('the anomaly detectors (src/detect) are not wired into imports yet');
      return;
    }
    await nav(page, /^Anomalies/);
    const list = page.getByTestId('anomaly-list');
    await list.waitFor({ timeout: 20_000 });
    const row = list.locator('tr', { hasText: SCANNER }).first();
    await row.waitFor();
    await row.getByRole('link').last().click();
    await page.getByTestId('anomaly-detail').waitFor();
    await page.getByTestId('evidence').waitFor();
    await page.locator('[data-testid=anomaly-detail] [data-testid=flow-table] button.row').first().waitFor({ timeout: 10_000 });
    await shot('anomalies-laptop-light');
    assertNoErrors('on the anomalies page');
  });

  it('the connection indicator shows the outage and recovers after a server restart', async () => {
    await nav(page, 'Overview');
    const generation = Number(await page.locator('main').getAttribute('data-generation'));
    await serve.stop();
    await page.locator('[data-testid=connection][data-status=offline]').waitFor({ timeout: 15_000 });
    await shot('overview-offline-laptop-light');
    await serve.restart();
    await page.locator('[data-testid=connection][data-status=online]').waitFor({ timeout: 20_000 });
    assert.ok(Number(await page.locator('main').getAttribute('data-generation')) > generation, 'reconnected');
    // The page reloads its data after reconnecting: the store kept the imported flows.
    await page.getByTestId('top-talkers').waitFor({ timeout: 15_000 });
    // The browser logs the refused connections while the server is down; nothing else.
    const unexpected = b.errors.filter((e) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource|net::ERR/.test(e));
    assert.deepEqual(unexpected, []);
    b.errors.length = 0;
  });

  it('looks right at phone size and in the dark theme', async () => {
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.waitForTimeout(300);
    await shot('overview-laptop-dark');
    await page.goto(`${serve.base}/#/flows`);
    await page.reload();
    await page.getByTestId('flow-table').waitFor();
    // A fresh page starts with the last minutes' stored flows (a page of 500: a page of 1000 with
    // every FlowFields field now costs more than the API's 50,000 limit).
    await waitForCount(page, (c) => c.total === 500, 'flows seeded from the store');
    await shot('flows-laptop-dark');
    await page.goto(`${serve.base}/#/host/10.1.0.1`);
    await page.getByTestId('host-peers').waitFor({ timeout: 15_000 });
    await page.waitForTimeout(300);
    await shot('host-laptop-dark');

    await page.setViewportSize({ width: 390, height: 844 });
    for (const [scheme, route, name] of [
      ['dark', '#/', 'overview'],
      ['light', '#/', 'overview'],
      ['dark', '#/flows', 'flows'],
      ['light', '#/history', 'history'],
      ['light', '#/host/10.1.0.1', 'host'],
      ['dark', '#/anomalies', 'anomalies'],
    ] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.goto(`${serve.base}/${route}`);
      await page.locator('[data-testid=connection][data-status=online]').waitFor({ timeout: 15_000 });
      await page.waitForTimeout(700);
      await shot(`${name}-phone-${scheme}`);
      // Nothing wider than the screen but the scrollable tables.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 1, `${route} overflows the phone screen by ${overflow}px`);
    }
    // The theme toggle overrides the system setting.
    await page.getByTestId('theme-toggle').click();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light');
    await page.getByTestId('theme-toggle').click();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    assertNoErrors('at phone size');
  });
});

describe('web client with a token', { skip }, () => {
  let dir: string;
  let serve: ServeProcess;
  let b: BrowserSession;

  before(async () => {
    ensureWebBuilt();
    dir = mkdtempSync(join(tmpdir(), 'flowlens-web-token-'));
    serve = await startServe(dir, ['--token', 'web-s3cret']);
    b = await openBrowser({ width: 1100, height: 700 });
  });
  after(async () => {
    await b?.close();
    await serve?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('asks for the token, keeps it and goes live with it', async () => {
    const page = b.page;
    await page.goto(`${serve.base}/`);
    await page.locator('[data-testid=connection][data-status=unauthorized]').waitFor({ timeout: 15_000 });
    await page.getByLabel('API token').fill('web-s3cret');
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.locator('[data-testid=connection][data-status=online]').waitFor({ timeout: 15_000 });
    await page.getByTestId('capture-status').waitFor({ timeout: 15_000 });
    await screenshot(page, 'overview-token-laptop-light');
    // Only the refused requests from before the token was given.
    const unexpected = b.errors.filter((e) => !/401|Unauthorized|Failed to load resource/.test(e));
    assert.deepEqual(unexpected, []);
  });
});
