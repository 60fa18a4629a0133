// Mid-stream TCP identification: corpus captures cut at test time so that no TCP connection shows
// its handshake (test/dpi/midstream.ts), identified by flowlens and by the installed ndpiReader on
// the same cut file. The cut must cost flowlens nothing: it agrees with ndpiReader on the cut files
// exactly as often as on the uncut captures (where they differ, it is the two nDPI versions' naming,
// listed by `node --import tsx test/dpi/midstream.ts`).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CORPUS } from './dpi/eval.js';
import { compareMidstream, cutHandshakes, flowlensFlows, MIDSTREAM_CAPTURES, ndpiReaderListing } from './dpi/midstream.js';

function has(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skip = !existsSync(CORPUS)
  ? `no corpus at ${CORPUS}`
  : !has('ndpiReader')
    ? 'ndpiReader not installed (libndpi-bin)'
    : !has('tshark')
      ? 'tshark not installed'
      : false;

describe('mid-stream TCP against ndpiReader', { skip }, () => {
  it('the cut leaves no handshake and every connection starts with its first payload', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowlens-midstream-test-'));
    try {
      const cut = join(dir, 'cut.pcap');
      assert.ok(await cutHandshakes(join(CORPUS, 'pcap', '443-firefox.pcap'), cut));
      const syns = execFileSync('tshark', ['-r', cut, '-Y', 'tcp.flags.syn == 1'], { encoding: 'utf8' }).trim();
      assert.equal(syns, '', 'SYNs left in the cut file');
      const first = execFileSync('tshark', ['-r', cut, '-c', '1', '-T', 'fields', '-e', 'tls.handshake.type', '-e', 'tls.handshake.extensions_server_name'], {
        encoding: 'utf8',
      }).trim();
      assert.equal(first, '1\twww.ntop.org', 'the first packet of the cut file is the ClientHello');
      const ndpi = (await ndpiReaderListing(cut, 'cut')).filter((n) => n.key.startsWith('tcp/'));
      assert.equal(ndpi.length, 1);
      assert.equal(ndpi[0].master, 'TLS');
      assert.equal(ndpi[0].serverName, 'www.ntop.org');
      const ours = (await flowlensFlows(cut, 'cut')).get(ndpi[0].key);
      assert.deepEqual(
        ours?.map((f) => [f.app, f.serverName, f.confidence]),
        [['TLS', 'www.ntop.org', 'dpi']],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('agrees with ndpiReader on cut captures as on the uncut ones', { timeout: 300_000 }, async () => {
    const r = await compareMidstream(MIDSTREAM_CAPTURES);
    console.log(
      `${r.captures} captures cut, ${r.flows} TCP flows: master ${r.agree} (uncut ${r.agreeUncut}), names ${r.namesIdentical} / ${r.names} (uncut ${r.namesIdenticalUncut})\n${r.differences.join('\n')}`,
    );
    assert.equal(r.captures, MIDSTREAM_CAPTURES.length, 'a capture could not be cut');
    assert.ok(r.flows >= 200, `too few labelled TCP flows (${r.flows})`);
    // ndpiReader names the cut flows as it names the uncut ones: the cut did not make them unidentifiable.
    assert.ok(r.ndpiStable / r.flows >= 0.99, `ndpiReader's labels changed with the cut: ${r.ndpiStable}/${r.flows}`);
    assert.ok(r.agree >= r.agreeUncut, `master protocol: ${r.agree} on the cut files, ${r.agreeUncut} uncut`);
    assert.ok(r.namesIdentical >= r.namesIdenticalUncut, `server names: ${r.namesIdentical} on the cut files, ${r.namesIdenticalUncut} uncut`);
    assert.ok(r.agree / r.flows >= 0.99, `master protocol ${r.agree}/${r.flows}`);
    assert.ok(r.namesIdentical / r.names >= 0.99, `server names ${r.namesIdentical}/${r.names}`);
  });

  it('a capture that also misses each side’s first segment still agrees where ndpiReader identifies', { timeout: 300_000 }, async () => {
    const r = await compareMidstream(MIDSTREAM_CAPTURES, 'first-payload');
    console.log(`first-payload cut: ${r.flows} TCP flows, master ${r.agree} (uncut ${r.agreeUncut})\n${r.differences.join('\n')}`);
    assert.ok(r.flows >= 150, `too few labelled TCP flows (${r.flows})`);
    assert.ok(r.agree / r.flows >= 0.98, `master protocol ${r.agree}/${r.flows}`);
  });
});
