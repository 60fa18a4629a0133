// --duckdb-memory-mb / FLOWLENS_DUCKDB_MEMORY_MB: DuckDB's memory_limit, and --duckdb-checkpoint-mb /
// FLOWLENS_DUCKDB_CHECKPOINT_MB: its checkpoint_threshold, as DuckDB itself reports them in the
// store's health (which /status shows); a value that is not a positive integer is a usage error
// naming the flag.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Command } from 'commander';
import { addStoreOptions, storeOptionsFrom } from '../src/cli/options.js';
import { openStore } from '../src/store/index.js';

const dir = mkdtempSync(join(tmpdir(), 'flowlens-duckdb-memory-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function parse(args: string[]): Record<string, unknown> {
  const cmd = addStoreOptions(new Command())
    .exitOverride()
    .configureOutput({ writeErr: () => {} });
  cmd.parse(args, { from: 'user' });
  return cmd.opts();
}

async function healthDetail(args: string[], name: string): Promise<string> {
  const store = await openStore(storeOptionsFrom(parse([...args, '--db', join(dir, `${name}.duckdb`)])));
  try {
    const h = await store.health();
    assert.equal(h.ok, true, h.detail);
    return h.detail ?? '';
  } finally {
    await store.close();
  }
}

test('DuckDB takes the memory limit of --duckdb-memory-mb, of FLOWLENS_DUCKDB_MEMORY_MB, or 256 MB', async () => {
  // DuckDB reports the limit in MiB: 96 MB is 91.5 MiB.
  assert.match(await healthDetail(['--duckdb-memory-mb', '96'], 'flag'), /memory limit 91\.5 MiB,/);
  process.env.FLOWLENS_DUCKDB_MEMORY_MB = '128';
  try {
    assert.match(await healthDetail([], 'env'), /memory limit 122\.0 MiB,/);
  } finally {
    delete process.env.FLOWLENS_DUCKDB_MEMORY_MB;
  }
  assert.match(await healthDetail([], 'default'), /memory limit 244\.1 MiB,/);
});

test('DuckDB takes the checkpoint threshold of --duckdb-checkpoint-mb, of FLOWLENS_DUCKDB_CHECKPOINT_MB, or 64 MB', async () => {
  assert.match(await healthDetail(['--duckdb-checkpoint-mb', '100'], 'checkpoint-flag'), /checkpoint threshold 95\.3 MiB$/);
  process.env.FLOWLENS_DUCKDB_CHECKPOINT_MB = '32';
  try {
    assert.match(await healthDetail([], 'checkpoint-env'), /checkpoint threshold 30\.5 MiB$/);
  } finally {
    delete process.env.FLOWLENS_DUCKDB_CHECKPOINT_MB;
  }
  assert.match(await healthDetail([], 'checkpoint-default'), /checkpoint threshold 61\.0 MiB$/);
});

test('a memory limit or checkpoint threshold that is not a positive integer is a usage error naming the flag', () => {
  for (const flag of ['--duckdb-memory-mb', '--duckdb-checkpoint-mb']) {
    for (const bad of ['0', '-5', 'lots', '1.5']) {
      assert.throws(
        () => parse([flag, bad]),
        (err: Error) => err.message.includes(flag),
        `${flag} ${bad}`,
      );
    }
  }
});
