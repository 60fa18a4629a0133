// @runs-alone (test/run.ts): tcpdump on lo, where other suites' traffic would enter
// Identification on captures made here and now by real programs over loopback (test/dpi/unseen.ts):
// flowlens against the installed ndpiReader on the same files, measured as `npm run eval:dpi` does.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { missingTool } from './helpers/netns.js';
import { cutHandshakes } from './dpi/midstream.js';
import { compareUnseen, installed, makeUnseenCaptures, UNSEEN_OPTIONAL_TOOLS, UNSEEN_TOOLS } from './dpi/unseen.js';

const missing = missingTool(...UNSEEN_TOOLS, 'tshark');
const skip = process.getuid?.() !== 0 ? 'needs root (tcpdump, ports below 1024)' : missing !== null ? `${missing} not installed` : false;

describe('identification on captures never seen before', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowlens-unseen-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('agrees with ndpiReader on master protocols and server names', { timeout: 300_000 }, async () => {
    const files = await makeUnseenCaptures(dir);
    for (const f of files) assert.ok(statSync(f).size > 24 * 10, `${f} captured nothing`);
    const r = await compareUnseen(files);
    console.log(
      `${r.agree}/${r.flows} master, ${r.namesIdentical}/${r.names} names, per protocol ${JSON.stringify(r.perProtocol)}\n${r.differences.join('\n')}`,
    );
    assert.ok(r.flows >= 38, `ndpiReader labelled only ${r.flows} flows`);
    // The optional programs' protocols where they are installed (not all are in CI's image).
    const optional = Object.entries(UNSEEN_OPTIONAL_TOOLS)
      .filter(([tool]) => installed(tool))
      .map(([, p]) => p);
    const absent = Object.keys(UNSEEN_OPTIONAL_TOOLS).filter((t) => !installed(t));
    if (absent.length > 0) console.log(`# not installed, their protocols not captured: ${absent.join(', ')}`);
    for (const p of ['TLS', 'HTTP', 'DNS', 'SMTP', 'POP3', 'FTP_CONTROL', ...optional]) assert.ok(r.perProtocol[p]?.flows > 0, `no ${p} flow captured`);
    // Measured: 47/47 and 36/36 (curl's clear-text IMAP session is IMAPS by nDPI's AUTHENTICATE rule: test/dpi-imap.test.ts).
    assert.ok(r.agree / r.flows >= 0.99, `master ${r.agree}/${r.flows}`);
    assert.ok(r.namesIdentical / r.names >= 0.99, `names ${r.namesIdentical}/${r.names}`);

    // The same captures picked up mid-stream (no handshakes): nothing is lost against ndpiReader.
    const cut: string[] = [];
    for (const f of files) {
      const c = f.replace(/\.pcap$/, '-midstream.pcap');
      assert.ok(await cutHandshakes(f, c));
      cut.push(c);
    }
    const m = await compareUnseen(cut);
    console.log(`mid-stream: ${m.agree}/${m.flows} master, ${m.namesIdentical}/${m.names} names\n${m.differences.join('\n')}`);
    assert.ok(m.flows >= r.flows - 2, `ndpiReader labelled ${m.flows} cut flows, ${r.flows} uncut`);
    assert.ok(m.agree / m.flows >= r.agree / r.flows - 0.001, `mid-stream master ${m.agree}/${m.flows}`);
    assert.ok(m.namesIdentical / m.names >= 0.99, `mid-stream names ${m.namesIdentical}/${m.names}`);
  });
});
