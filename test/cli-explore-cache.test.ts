/**
 * `--explore-cache-mb` / FLOWLENS_EXPLORE_CACHE_MB (issue 21): Explore's memory budget on the
 * commands that serve the API. A bad value exits 2 with one error line naming the flag (through the
 * real CLI), and the value given reaches the store (serve's flags as they parse, the store options
 * the CLI makes of them, the store opened from those, its budget read back). `run` takes the same
 * API flags (addApiOptions) and store options.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { addStoreOptions, storeOptionsFrom } from '../src/cli/options.js';
import { addApiOptions } from '../src/cli/serve-command.js';
import { DuckDbStore } from '../src/store/duckdb.js';
import { openStore } from '../src/store/index.js';
import { runCli, stackTraceLines } from './helpers/cli.js';

const MIB = 1024 * 1024;

/** The options of `flowlens serve ARGS` as its flags parse them (serve's API and store flags; nothing starts). */
function parsedServeOptions(args: string[], env: Record<string, string> = {}): Record<string, unknown> {
  const saved = { ...process.env };
  for (const k of Object.keys(process.env)) if (k.startsWith('FLOWLENS_')) delete process.env[k];
  Object.assign(process.env, env);
  try {
    const cmd = addStoreOptions(addApiOptions(new Command('serve'))).exitOverride();
    cmd.parse(args, { from: 'user' });
    return cmd.opts();
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

describe('--explore-cache-mb', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-explore-cache-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a bad value exits 2 with one line naming the flag (flag and env var)', async () => {
    for (const [args, env, shown] of [
      [['serve', '--explore-cache-mb', 'lots', '--db', join(dir, 'a.duckdb')], {}, "argument 'lots'"],
      [['serve', '--explore-cache-mb', '-1', '--db', join(dir, 'a.duckdb')], {}, "argument '-1'"],
      [['serve', '--db', join(dir, 'a.duckdb')], { FLOWLENS_EXPLORE_CACHE_MB: '12MB' }, "value '12MB' from env 'FLOWLENS_EXPLORE_CACHE_MB'"],
    ] as [string[], Record<string, string>, string][]) {
      const r = await runCli(args, { env, timeoutMs: 30_000 });
      assert.equal(r.code, 2, r.stderr);
      const lines = r.stderr.split('\n').filter((l) => l !== '' && l !== '(run with --help for usage)');
      assert.deepEqual(lines, [`error: option '--explore-cache-mb <mb>' ${shown} is invalid. must be a number of 0 or more.`]);
      assert.deepEqual(stackTraceLines(r.stderr), []);
    }
  });

  it('the value reaches the store (flag, env var and default)', async () => {
    const budget = async (args: string[], env?: Record<string, string>) => {
      const o = parsedServeOptions([...args, '--db', join(dir, 'serve.duckdb')], env);
      const store = await openStore(storeOptionsFrom(o));
      try {
        assert.ok(store instanceof DuckDbStore);
        return store.readState().exploreCache?.maxBytes ?? 0;
      } finally {
        await store.close();
      }
    };
    assert.equal(await budget(['--explore-cache-mb', '7']), 7 * MIB);
    assert.equal(await budget(['--explore-cache-mb', '0.5']), 0.5 * MIB);
    assert.equal(await budget([], { FLOWLENS_EXPLORE_CACHE_MB: '9' }), 9 * MIB);
    assert.equal(await budget([]), 128 * MIB, 'the default');
    assert.equal(await budget(['--explore-cache-mb', '0']), 0, 'off: Explore by SQL');
  });
});
