/**
 * Rules and watchlists are read again when their file changes. A change made just after start-up
 * was missed (fs.watchFile takes its first stat asynchronously, after the write: about half of 40
 * files here, and the alert-rules reload test failed under CI's load); each poll now compares with
 * the version that was read.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ReloadingFile } from '../src/alert/reloading-file.js';

test('a change written right after start-up is read again, for every file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowlens-reload-'));
  const files: ReloadingFile<string>[] = [];
  const values = new Map<number, string>();
  try {
    for (let i = 0; i < 40; i++) {
      const file = join(dir, `rules-${i}`);
      writeFileSync(file, 'first');
      files.push(
        new ReloadingFile(
          file,
          (_f, text) => text,
          (v) => v !== null && values.set(i, v),
          100,
        ),
      );
      writeFileSync(file, 'second version');
    }
    for (let t = 0; t < 100 && values.size < 40; t++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(values.size, 40, 'changes seen');
    assert.ok([...values.values()].every((v) => v === 'second version'));
    assert.ok(files.every((f) => f.value === 'second version'));
  } finally {
    for (const f of files) f.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
