/**
 * Issue 26 in a real browser (Debian's Chromium through playwright-core) against a real
 * `flowlens serve`: a corpus capture (telnet.pcap, one TCP flow of 92 packets) imported with
 * `flowlens import` (which indexes its packets); its flow opened from History downloads a capture
 * equal byte for byte to `flowlens pcap --flow ID`, under the name a Wireshark user expects; the
 * packet list shows the flow's first 50 packets as tshark reads them, and a selected packet's
 * payload as hex and ASCII; when the capture file is gone, the detail says so instead.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { chromiumMissing, screenshot, type ServeProcess } from './helpers/browser.js';
import { startWebSession, type WebSession } from './helpers/web-session.js';
import { runCli } from './helpers/cli.js';

const exec = promisify(execFile);
const CORPUS = join(import.meta.dirname, '..', '..', 'shared', 'corpus', 'ndpi', 'pcap', 'telnet.pcap');
const skip = chromiumMissing() ?? (existsSync(CORPUS) ? undefined : `corpus absent (${CORPUS})`);
if (skip) console.log(`# packets-web: skipped: ${skip}`);

interface Flow {
  id: string;
  clientIp: string;
  clientPort: number;
  serverIp: string;
  serverPort: number;
  clientPackets: number;
  serverPackets: number;
  firstSeen: string;
}

describe("web client: a flow's packets", { skip }, () => {
  let session: WebSession;
  let dir: string;
  let capture: string;
  let serve: ServeProcess;
  let page: Page;
  let flow: Flow;

  before(async () => {
    session = await startWebSession('flowlens-packets-web-', async (d) => {
      dir = d;
      capture = join(dir, 'telnet.pcap');
      copyFileSync(CORPUS, capture);
      const r = await runCli(['import', '--db', join(dir, 'flows.duckdb'), '--no-progress', capture]);
      assert.equal(r.code, 0, r.stderr);
    });
    ({ serve, page } = session);
    const res = await fetch(`${serve.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: `{ flows(from: "1990-01-01T00:00:00Z", to: "2100-01-01T00:00:00Z", filter: { port: 23 }) { edges { node {
          id clientIp clientPort serverIp serverPort clientPackets serverPackets firstSeen } } } }`,
      }),
    });
    const body = (await res.json()) as { data: { flows: { edges: { node: Flow }[] } } };
    assert.equal(body.data.flows.edges.length, 1, JSON.stringify(body));
    flow = body.data.flows.edges[0].node;
  });

  after(() => session?.close());

  async function openFlow(): Promise<void> {
    await page.goto(`${serve.base}/#/history`);
    await page.locator(`[data-testid=flow-table] [data-flow-id="${flow.id}"]`).click({ timeout: 20_000 });
    await page.getByTestId('flow-packets').waitFor();
  }

  it('downloads the flow as `flowlens pcap --flow` writes it, named for Wireshark', { timeout: 90_000 }, async () => {
    await openFlow();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('flow-packets').getByTestId('pcap-download').click()]);
    const time = flow.firstSeen.replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
    assert.equal(download.suggestedFilename(), `flowlens-${flow.clientIp}-${flow.serverIp}-${time}.pcap`);
    const saved = join(dir, 'downloaded.pcap');
    await download.saveAs(saved);
    const expected = join(dir, 'expected.pcap');
    const r = await runCli(['pcap', '--db', join(dir, 'flows.duckdb'), '--flow', flow.id, '-o', expected]);
    assert.equal(r.code, 0, r.stderr);
    const ours = readFileSync(saved);
    assert.ok(ours.length > 7000, `${ours.length} bytes`);
    assert.ok(ours.equals(readFileSync(expected)), `${ours.length} bytes against flowlens pcap's ${readFileSync(expected).length}`);
  });

  it("lists the first 50 packets as tshark reads them and shows a payload's bytes", { timeout: 90_000 }, async () => {
    await openFlow();
    const total = flow.clientPackets + flow.serverPackets;
    assert.equal(total, 92);
    const panel = page.getByTestId('flow-packets');
    assert.match((await panel.getByTestId('packet-count').textContent()) ?? '', /^\s*First 50 of 92 packets/);
    const rows = panel.locator('[data-testid=packet-list] tbody tr');
    assert.equal(await rows.count(), 50);
    const { stdout } = await exec('tshark', [
      '-r',
      capture,
      '-c',
      '50',
      '-T',
      'fields',
      '-E',
      'separator=|',
      '-e',
      'ip.src',
      '-e',
      'frame.len',
      '-e',
      'tcp.len',
      '-e',
      'tcp.payload',
    ]);
    const theirs = stdout
      .trim()
      .split('\n')
      .map((l) => l.split('|'));
    for (let i = 0; i < 50; i++) {
      const cells = (await rows.nth(i).locator('td').allTextContents()).map((c) => c.trim());
      const [src, len, tcpLen] = theirs[i];
      assert.deepEqual(
        [cells[0], cells[2], cells[3], cells[5]],
        [String(i + 1), src === flow.clientIp ? '→' : '←', len, tcpLen],
        `packet ${i + 1}: ${cells.join(' | ')}`,
      );
    }
    assert.match((await rows.nth(0).locator('td').nth(4).textContent()) ?? '', /SYN/);
    // The first packet with a payload: its bytes as hex and ASCII.
    const at = theirs.findIndex(([, , tcpLen]) => Number(tcpLen) > 0);
    assert.ok(at >= 0);
    await rows.nth(at).getByRole('button').click();
    const hex = (await panel.getByTestId('packet-hex').textContent()) ?? '';
    const payload = Buffer.from(theirs[at][3].replace(/:/g, ''), 'hex');
    const firstRow = payload.subarray(0, 16);
    const pairs = [...firstRow].map((x) => x.toString(16).padStart(2, '0'));
    assert.ok(hex.startsWith(`0000  ${pairs.slice(0, 8).join(' ')}`), hex.slice(0, 80));
    const ascii = [...firstRow].map((x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : '.')).join('');
    assert.ok(hex.split('\n')[0].endsWith(ascii), `${hex.split('\n')[0]} ends with ${ascii}`);
    assert.equal(hex.trim().split('\n').length, Math.ceil(payload.length / 16));
    await screenshot(page, 'flow-packets');
  });

  it('says why when the packets are gone, instead of a download', { timeout: 90_000 }, async () => {
    renameSync(capture, join(dir, 'moved.pcap'));
    await openFlow();
    const panel = page.getByTestId('flow-packets');
    assert.match((await panel.getByTestId('packets-unavailable').textContent()) ?? '', /telnet\.pcap, which is gone/);
    assert.equal(await panel.getByTestId('pcap-download').count(), 0);
    assert.equal(await panel.getByTestId('packet-list').count(), 0);
  });
});
