// The Anomalies page's notifications in a real browser (Debian's Chromium) against `flowlens serve
// --rules --notify-config`: the channels with their state (a webhook that is up, one whose port is
// closed and retries), "Send test" reaching the receiver, recent notifications, and acknowledging
// an anomaly, which the server keeps (shown again after a reload).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { writeAlertCapture } from './helpers/alert-capture.js';
import { type BrowserSession, chromiumMissing, ensureWebBuilt, openBrowser, type ServeProcess, screenshot, startServe } from './helpers/browser.js';
import { runCli } from './helpers/cli.js';
import { freePort, HttpReceiver, waitFor } from './helpers/notify-receivers.js';

const skip = chromiumMissing();
if (skip) console.log(`# notify-web: skipped: ${skip}`);

let dir: string;
let serve: ServeProcess;
let b: BrowserSession;
let page: Page;
const receiver = new HttpReceiver();

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'flowlens-notify-web-'));
  ensureWebBuilt();
  await receiver.start();
  const rules = join(dir, 'alert.rules');
  writeFileSync(rules, 'set quiet=2s update=1s\nsmb-fanout critical transport=tcp serverPort=445 when peers >= 20 per source in 60s\n');
  const notify = join(dir, 'notify.json');
  writeFileSync(
    notify,
    JSON.stringify({
      outbox: join(dir, 'outbox'),
      groupWaitSec: 0,
      retry: { initialSec: 0.5, maxSec: 2 },
      channels: {
        hook: { type: 'webhook', url: `${receiver.url}/hook` },
        pager: { type: 'webhook', url: `http://127.0.0.1:${await freePort()}/`, timeoutSec: 1 },
      },
      routes: [{ channels: ['hook', 'pager'], kinds: ['RULE'] }],
    }),
  );
  serve = await startServe(dir, ['--rules', rules, '--notify-config', notify]);
  const capture = join(dir, 'alert.pcap');
  writeAlertCapture(capture, { t0: Math.floor(Date.now() / 1000) - 120, fanout: 30 });
  const r = await runCli(['import', capture, '--server', `${serve.base}/graphql`, '--json'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  await waitFor('the rule notification', () => (receiver.requests.length > 0 ? true : undefined), 30_000);
  b = await openBrowser();
  page = b.page;
});

after(async () => {
  await b?.close();
  await serve?.stop();
  await receiver.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('notifications on the Anomalies page', { skip }, () => {
  test('channels with their state, a test notification, acknowledging an anomaly', { timeout: 90_000 }, async () => {
    await page.goto(`${serve.base}/#/anomalies`);
    const panel = page.getByTestId('notification-channels');
    await panel.waitFor({ timeout: 20_000 });
    const pager = panel.locator('tr[data-channel=pager]');
    await pager.waitFor();
    assert.match((await pager.textContent()) ?? '', /\(retrying\)/);
    assert.match((await pager.getByTestId('queue-depth').textContent()) ?? '', /^[1-9]/);
    assert.match((await pager.textContent()) ?? '', /fetch failed|ECONNREFUSED/);
    assert.match((await panel.locator('tr[data-channel=hook]').textContent()) ?? '', /webhook/);

    const before = receiver.requests.length;
    await panel.locator('tr[data-channel=hook] button', { hasText: 'Send test' }).click();
    // The rule's anomaly can resolve meanwhile: its notification may arrive before or after the test's.
    await waitFor('the test notification', () => (receiver.requests.slice(before).some((r) => /"test":true/.test(r.body ?? '')) ? true : undefined), 10_000);
    assert.equal(receiver.requests.slice(before).filter((r) => /"test":true/.test(r.body ?? '')).length, 1);
    await page.getByRole('status').filter({ hasText: 'Test notification queued on hook.' }).waitFor();
    await page
      .getByTestId('recent-notifications')
      .filter({ hasText: /hook test/ })
      .waitFor({ timeout: 10_000 });

    // Acknowledge the rule's anomaly; the server keeps it.
    await page
      .getByTestId('anomaly-list')
      .getByRole('link', { name: /rule smb-fanout/ })
      .first()
      .click();
    const form = page.getByTestId('acknowledge-form');
    await form.waitFor();
    await form.getByLabel('Acknowledged by').fill('alice');
    await form.getByLabel('Note').fill('known pentest');
    await form.getByRole('button', { name: 'Acknowledge' }).click();
    const ack = page.getByTestId('acknowledgement');
    await ack.waitFor();
    assert.match((await ack.textContent()) ?? '', /Acknowledged by alice at .*: known pentest/);
    await screenshot(page, 'anomalies-notifications-laptop-light');
    await page.reload();
    await page.getByTestId('acknowledgement').waitFor({ timeout: 20_000 });
    assert.match((await page.getByTestId('acknowledgement').textContent()) ?? '', /alice/);
    const unexpected = b.errors.filter((e) => !/Failed to load resource|WebSocket/.test(e));
    assert.deepEqual(unexpected, []);
  });
});
