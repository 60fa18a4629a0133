/**
 * GraphiQL at /graphql without internet (issue 21): yoga's default page loads its scripts from
 * unpkg.com and stayed blank offline. Chromium opens /graphql of a real `flowlens serve` with every
 * request to anything but the server refused; GraphiQL must render its editor, run a query against
 * the server and ask nothing of another host.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromiumMissing, openBrowser, startServe, type BrowserSession, type ServeProcess } from './helpers/browser.js';

const missing = chromiumMissing();
if (missing) console.log(`# graphiql-offline: skipped: ${missing}`);

describe('GraphiQL without internet', { skip: missing ?? false }, () => {
  let dir: string;
  let serve: ServeProcess;
  let browser: BrowserSession;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-graphiql-'));
    serve = await startServe(dir);
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
    await serve?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('renders from the server alone and runs a query', async () => {
    const elsewhere: string[] = [];
    await browser.context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(serve.base) || url.startsWith('blob:') || url.startsWith('data:')) return route.continue();
      elsewhere.push(url);
      return route.abort('internetdisconnected');
    });
    const page = browser.page;
    // The query given in the URL, as GraphiQL's links carry it.
    await page.goto(`${serve.base}/graphql?query=${encodeURIComponent('{ dataRange { basis } }')}`, { waitUntil: 'load', timeout: 60_000 });
    // GraphiQL's run button: the page rendered.
    const run = page.locator('.graphiql-execute-button');
    await run.waitFor({ state: 'visible', timeout: 60_000 });
    assert.equal(await page.title(), 'flowlens');
    const answered = page.waitForResponse((r) => r.url() === `${serve.base}/graphql` && /dataRange\s*\{\s*basis/.test(r.request().postData() ?? ''), {
      timeout: 30_000,
    });
    await run.click();
    const response = await answered;
    assert.equal(response.status(), 200);
    assert.match(await response.text(), /^\{"data":\{"dataRange":\{"basis":"/);
    assert.deepEqual(elsewhere, [], 'nothing fetched from another host');
  });
});
