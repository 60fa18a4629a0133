/**
 * The learned classifier's guess in a real browser (Debian's Chromium through playwright-core)
 * against a real `flowlens serve`: telegram.pcap of the nDPI corpus, imported with `flowlens import`,
 * has flows DPI names and flows it does not. A flow DPI did not name shows its transport/port label
 * with the guess beside it, marked as one ("≈ ..."), and its detail says it is the classifier's, not
 * DPI's, with the confidence the API gives; a flow DPI named shows neither.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { CORPUS, corpusFiles } from './dpi/eval.js';
import { chromiumMissing, screenshot, type BrowserSession, type ServeProcess } from './helpers/browser.js';
import { runCli } from './helpers/cli.js';
import { startWebSession, type WebSession } from './helpers/web-session.js';

const file = corpusFiles().find((f) => f.name === 'telegram.pcap');
const skip = chromiumMissing() ?? (file === undefined ? `the nDPI corpus is not at ${CORPUS}` : undefined);
if (skip) console.log(`# web-predicted: skipped: ${skip}`);

interface Flow {
  id: string;
  transport: string;
  serverIp: string;
  serverPort: number;
  app: string | null;
  predictedCategory: string | null;
  predictedApp: string | null;
  predictedConfidence: number | null;
}

describe("web client: the classifier's guess where DPI named nothing", { skip }, () => {
  let session: WebSession;
  let serve: ServeProcess;
  let b: BrowserSession;
  let page: Page;
  let flows: Flow[];

  before(async () => {
    session = await startWebSession('flowlens-web-predicted-', async (dir) => {
      const r = await runCli(['import', '--db', join(dir, 'flows.duckdb'), '--no-progress', file!.pcap]);
      assert.equal(r.code, 0, r.stderr);
    });
    ({ serve, browser: b, page } = session);
    const res = await fetch(`${serve.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query:
          '{ flows(from: "1990-01-01T00:00:00Z", to: "2100-01-01T00:00:00Z") { edges { node { id transport serverIp serverPort app predictedCategory predictedApp predictedConfidence } } } }',
      }),
    });
    const body = (await res.json()) as { data: { flows: { edges: { node: Flow }[] } } };
    flows = body.data.flows.edges.map((e) => e.node);
  });

  after(() => session?.close());

  /** History narrowed to the flow's server (the table renders the rows in view only), the flow's row. */
  async function showFlow(f: Flow) {
    await page.goto(`${serve.base}/#/history`);
    await page.getByRole('main').getByLabel('Host', { exact: true }).fill(f.serverIp);
    const row = page.locator(`[data-testid=flow-table] [data-flow-id="${f.id}"]`);
    await row.waitFor({ timeout: 20_000 });
    return row;
  }

  it('a flow DPI did not name: its port label, the guess beside it, and the detail says whose guess it is', { timeout: 90_000 }, async () => {
    assert.ok(flows.length > 20, `${flows.length} flows`);
    const guessed = flows.find((f) => !f.app && f.predictedCategory);
    assert.ok(guessed, JSON.stringify(flows));
    assert.equal(flows.filter((f) => f.app && f.predictedCategory).length, 0, 'no guess beside a DPI answer in the API either');
    const name = guessed.predictedApp || guessed.predictedCategory;
    const row = await showFlow(guessed);
    const label = row.getByTestId('flow-predicted-label');
    assert.equal((await label.textContent())?.trim(), `≈ ${name}`);
    assert.match((await row.textContent()) ?? '', new RegExp(`${guessed.transport}/${guessed.serverPort}`), 'the label stays the port');
    await row.click();
    const detail = page.getByTestId('flow-predicted');
    await detail.waitFor();
    const text = (await detail.textContent()) ?? '';
    assert.ok(text.startsWith(guessed.predictedCategory!), text);
    assert.match(text, new RegExp(`\\(${guessed.predictedConfidence}% sure\\)`));
    assert.match(text, /learned classifier/);
    assert.match(text, /not identified by DPI/);
    await screenshot(page, 'flow-predicted');
    assert.deepEqual(b.errors, []);
  });

  it('a flow DPI named: no guess in its row or its detail', { timeout: 90_000 }, async () => {
    const named = flows.find((f) => f.app);
    assert.ok(named, JSON.stringify(flows));
    const row = await showFlow(named);
    assert.equal(await row.getByTestId('flow-predicted-label').count(), 0);
    await row.click();
    await page.getByTestId('flow-detail').waitFor();
    assert.equal(await page.getByTestId('flow-predicted').count(), 0);
  });
});
