// Ctrl-C during an import: the flows decoded so far are ended and written, the summary says
// "interrupted", the exit code is 130. The capture is a FIFO fed slowly, so the import is
// certainly still running when the signal comes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, createWriteStream, openSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI_ARGV, exportFlows, spawnWatched, withTempDir } from './helpers/cli.js';
import { ETHERTYPE, ethernet, ip, udp } from './helpers/frames.js';
import { pcapHeader, pcapRecord } from './helpers/pcap-writer.js';

test('SIGINT during an import writes the flows decoded so far and exits 130', async () => {
  await withTempDir(async (dir) => {
    const fifo = join(dir, 'live.pcap');
    const db = join(dir, 'db.duckdb');
    execFileSync('mkfifo', [fifo]);
    const watched = spawnWatched([...CLI_ARGV, 'import', fifo, '--db', db, '--json']);
    const { child, output } = watched;
    // 130 is how a shell reports death by SIGINT; the process re-raises the signal after cleaning up.
    const exited = watched.exited.then(({ code, signal }) => (signal === 'SIGINT' ? 130 : code));

    // Opening the FIFO for writing completes only once the importer has opened it for reading,
    // which it does after installing its signal handlers: from then on SIGINT is the import's to handle.
    const out = createWriteStream(fifo);
    const first = await Promise.race([once(out, 'open').then(() => 'open' as const), exited.then(() => 'exited' as const)]);
    if (first === 'exited') {
      // Release our own open, still waiting for a reader, so that this process can end.
      closeSync(openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK));
      assert.fail(`the importer exited before opening the capture: ${output.stderr}`);
    }
    const opts = { linktype: 1 };
    out.write(pcapHeader(opts));
    const base = 1_700_000_000_000_000_000n;
    const sent = 40;
    for (let i = 0; i < sent; i++) {
      // 40 UDP flows, one packet each, a second apart in packet time.
      const data = ethernet({
        etherType: ETHERTYPE.IPV4,
        payload: ip({ src: '10.9.0.1', dst: '10.9.0.2', l4: udp({ srcPort: 20000 + i, dstPort: 53, payload: new Uint8Array(20) }) }),
      });
      out.write(pcapRecord(opts, { ts: base + BigInt(i) * 1_000_000_000n, data }));
      await sleep(20);
    }
    await new Promise<void>((resolve) => out.write('', () => resolve()));
    await sleep(1500); // the importer has read and decoded them, and waits for more
    child.kill('SIGINT');
    const code = await Promise.race([exited, sleep(20_000).then(() => 'timeout' as const)]);
    out.destroy();
    if (code === 'timeout') child.kill('SIGKILL');
    assert.equal(code, 130, `exit code after SIGINT (stderr: ${output.stderr})`);
    const summary = JSON.parse(output.stdout);
    assert.equal(summary.interrupted, true);
    assert.equal(summary.packets, sent);
    assert.equal(summary.flows, sent);
    const flows = await exportFlows(db);
    assert.equal(flows.length, sent, 'every flow decoded before the signal is in the store');
    assert.ok(flows.every((f) => f.clientPackets === 1 && f.serverPort === 53));
  });
});
