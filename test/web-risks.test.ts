// @runs-alone (test/run.ts): captures a TLS session over lo
/**
 * The flow detail's Risks row in a real browser (Debian's Chromium through playwright-core) against
 * a real `flowlens serve`: a TLS 1.2 session captured here (curl to openssl s_server over loopback,
 * tcpdump) whose server shows a self-signed certificate that expired in 2024, made with openssl at
 * test time, imported with `flowlens import`. Its flow, opened from History, lists the risks the
 * API gives it (an expired and a self-signed certificate); a clear-text HTTP flow of the same
 * capture shows no Risks row.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { capture, client, stop, waitFor } from './dpi/unseen.js';
import { chromiumMissing, screenshot, type BrowserSession, type ServeProcess } from './helpers/browser.js';
import { startWebSession, type WebSession } from './helpers/web-session.js';
import { runCli } from './helpers/cli.js';
import { missingTool } from './helpers/netns.js';

/** An address of its own on loopback: test/dpi/unseen.ts's captures may run at the same time on 127.27.0.2. */
const HOST = '127.27.0.3';
const missing = missingTool('tcpdump', 'openssl', 'curl', 'python3');
const skip = chromiumMissing() ?? (process.getuid?.() !== 0 ? 'needs root (tcpdump)' : missing !== null ? `${missing} not installed` : undefined);
if (skip) console.log(`# web-risks: skipped: ${skip}`);

interface Flow {
  id: string;
  serverPort: number;
  app: string | null;
  risks: string | null;
}

/** A self-signed certificate for expired.example valid only in January 2024, signed by its own key. */
function expiredCertificate(dir: string): { cert: string; key: string } {
  const ca = join(dir, 'ca');
  mkdirSync(join(ca, 'db'), { recursive: true });
  writeFileSync(join(ca, 'db', 'index.txt'), '');
  writeFileSync(join(ca, 'db', 'serial'), '01\n');
  writeFileSync(
    join(ca, 'ca.cnf'),
    '[ca]\ndefault_ca = test\n[test]\ndatabase = db/index.txt\nserial = db/serial\nnew_certs_dir = db\ndefault_md = sha256\npolicy = any\ncopy_extensions = copy\n[any]\ncommonName = supplied\n',
  );
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: ca, stdio: ['ignore', 'ignore', 'pipe'] });
  openssl(
    'req',
    '-new',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'key.pem',
    '-out',
    'req.csr',
    '-subj',
    '/CN=expired.example',
    '-addext',
    'subjectAltName=DNS:expired.example',
  );
  openssl(
    'ca',
    '-batch',
    '-config',
    'ca.cnf',
    '-selfsign',
    '-keyfile',
    'key.pem',
    '-in',
    'req.csr',
    '-out',
    'cert.pem',
    '-startdate',
    '20240101000000Z',
    '-enddate',
    '20240201000000Z',
  );
  return { cert: join(ca, 'cert.pem'), key: join(ca, 'key.pem') };
}

describe('web client: the Risks row of the flow detail', { skip }, () => {
  let session: WebSession;
  let dir: string;
  let serve: ServeProcess;
  let b: BrowserSession;
  let page: Page;
  let flows: Flow[];

  before(async () => {
    session = await startWebSession('flowlens-web-risks-', async (d) => {
      dir = d;
      const { cert, key } = expiredCertificate(dir);
      const file = join(dir, 'risky.pcap');
      await capture(
        file,
        async () => {
          const tls = spawn('openssl', ['s_server', '-accept', `${HOST}:443`, '-cert', cert, '-key', key, '-www', '-tls1_2'], {
            stdio: ['pipe', 'pipe', 'pipe'],
          });
          const http = spawn('python3', ['-u', '-m', 'http.server', '80', '--bind', HOST, '--directory', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
          await Promise.all([waitFor(tls, /ACCEPT/), waitFor(http, /Serving HTTP/)]);
          try {
            await client('curl', ['-sk', '--tls-max', '1.2', '--resolve', `expired.example:443:${HOST}`, 'https://expired.example/']);
            await client('curl', ['-s', `http://${HOST}/`]);
          } finally {
            await stop(tls);
            await stop(http);
          }
        },
        HOST,
      );
      const r = await runCli(['import', '--db', join(dir, 'flows.duckdb'), '--no-progress', file]);
      assert.equal(r.code, 0, r.stderr);
    });
    ({ serve, browser: b, page } = session);
    const res = await fetch(`${serve.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ flows(from: "1990-01-01T00:00:00Z", to: "2100-01-01T00:00:00Z") { edges { node { id serverPort app risks } } } }' }),
    });
    const body = (await res.json()) as { data: { flows: { edges: { node: Flow }[] } } };
    flows = body.data.flows.edges.map((e) => e.node);
  });

  after(() => session?.close());

  async function openFlow(id: string): Promise<void> {
    await page.goto(`${serve.base}/#/history`);
    await page.locator(`[data-testid=flow-table] [data-flow-id="${id}"]`).click({ timeout: 20_000 });
    await page.getByTestId('flow-detail').waitFor();
  }

  it('lists the TLS flow’s risks as the API gives them', { timeout: 90_000 }, async () => {
    const tls = flows.find((f) => f.serverPort === 443);
    assert.ok(tls, JSON.stringify(flows));
    assert.equal(tls.app, 'TLS');
    const risks = (tls.risks ?? '').split(',');
    assert.ok(risks.includes('TLS Cert Expired') && risks.includes('Self-signed Cert'), `risks: ${tls.risks}`);
    await openFlow(tls.id);
    const row = page.getByTestId('flow-risks');
    await row.waitFor();
    const shown = (await row.locator('.risk').allTextContents()).map((t) => t.trim());
    assert.deepEqual(shown, risks);
    await screenshot(page, 'flow-risks');
    assert.deepEqual(b.errors, []);
  });

  it('shows no Risks row for a flow without any', { timeout: 90_000 }, async () => {
    const http = flows.find((f) => f.serverPort === 80);
    assert.ok(http, JSON.stringify(flows));
    assert.equal(http.app, 'HTTP');
    assert.ok(!http.risks, `risks: ${http.risks}`);
    await openFlow(http.id);
    assert.equal(await page.getByTestId('flow-risks').count(), 0);
  });
});
