// The source that makes a write count exactly once (src/capture/source.ts): the same content names
// the same source wherever it lies, other content another; what can be read only once is new each time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importSource } from '../src/capture/source.js';
import { withTempDir } from './helpers/cli.js';

test('an import source names the content: same bytes anywhere, same source; any change in size, head or tail, another', async () => {
  await withTempDir(async (dir) => {
    const big = Buffer.alloc(3 * 1024 * 1024, 1);
    writeFileSync(join(dir, 'a.pcap'), big);
    writeFileSync(join(dir, 'copy.pcap'), big);
    const a = await importSource([join(dir, 'a.pcap')]);
    assert.match(a, /^i[0-9a-f]{15}$/);
    assert.equal(await importSource([join(dir, 'copy.pcap')]), a);
    const tail = Buffer.from(big);
    tail[tail.length - 1] = 2;
    writeFileSync(join(dir, 'tail.pcap'), tail);
    assert.notEqual(await importSource([join(dir, 'tail.pcap')]), a);
    writeFileSync(join(dir, 'short.pcap'), big.subarray(1));
    assert.notEqual(await importSource([join(dir, 'short.pcap')]), a);
    // Order matters: files continue one another's flows.
    writeFileSync(join(dir, 'b.pcap'), Buffer.alloc(10, 3));
    assert.notEqual(await importSource([join(dir, 'a.pcap'), join(dir, 'b.pcap')]), await importSource([join(dir, 'b.pcap'), join(dir, 'a.pcap')]));
  });
});

test('a FIFO is not opened and gets a new source each time', async () => {
  await withTempDir(async (dir) => {
    const fifo = join(dir, 'live.pcap');
    execFileSync('mkfifo', [fifo]);
    // Opening a FIFO with no writer would block: a result at all shows it was not opened.
    const [x, y] = await Promise.all([importSource([fifo]), importSource([fifo])]);
    assert.notEqual(x, y);
    assert.match(x, /^l[0-9a-f]{15}$/);
  });
});
