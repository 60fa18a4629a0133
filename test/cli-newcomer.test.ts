/**
 * What a newcomer hit on the command line (issue 21), each through the real CLI: a mistyped
 * command says "unknown command"; a bad flag value exits 2 (`--port 99999`); a store path that
 * cannot be created fails at once (`--db /proc/nope/x.duckdb` spun a core: Node's recursive mkdir
 * loops there); a failed import prints no "imported 1 file" and leaves no empty store file; a port
 * in use is one line, not a stack; serve names the web client's address on start.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sampleCapture } from './api-helpers.js';
import { runCli, stackTraceLines } from './helpers/cli.js';
import { startServe, type ServeProcess } from './helpers/browser.js';
import { makeDirectory } from '../src/store/make-dir.js';

describe('newcomer CLI items', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-newcomer-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("a mistyped command: 'unknown command', exit 2", async () => {
    const r = await runCli(['imoprt', 'x.pcap']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, "flowlens: unknown command 'imoprt' (commands: import, export, pcap, serve, capture, run; see flowlens --help)\n");
    assert.doesNotMatch(r.stderr, /too many arguments/);
  });

  it('a bad flag value exits 2: --port 99999, FLOWLENS_PORT too', async () => {
    for (const [args, env] of [
      [['serve', '--port', '99999', '--db', join(dir, 'p.duckdb')], {}],
      [['serve', '--db', join(dir, 'p.duckdb')], { FLOWLENS_PORT: '-1' }],
    ] as [string[], Record<string, string>][]) {
      const r = await runCli(args, { env, timeoutMs: 30_000 });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /port must be from 0 to 65535/);
      assert.deepEqual(stackTraceLines(r.stderr), []);
    }
  });

  it('a store path that cannot be created fails at once, in one line', async () => {
    const sample = sampleCapture(join(dir, 's.pcap'));
    const started = Date.now();
    const r = await runCli(['import', '--db', '/proc/nope/x.duckdb', '--no-progress', sample.path], { timeoutMs: 30_000 });
    assert.equal(r.signal, null, 'it ended by itself (it spun until killed before)');
    assert.equal(r.code, 1);
    // The packet index's directory (beside the store by default) is made first, before any store file.
    assert.equal(r.stderr, 'flowlens: cannot create directory /proc/nope/packets: /proc/nope: ENOENT\n');
    console.log(`# --db /proc/nope/x.duckdb failed after ${Date.now() - started} ms (CLI start included)`);
    // makeDirectory itself: a file in the way, and a deep path that can be made.
    writeFileSync(join(dir, 'afile'), '');
    assert.throws(() => makeDirectory(join(dir, 'afile', 'sub')), /afile\/sub: ENOTDIR$/);
    makeDirectory(join(dir, 'a', 'b', 'c'));
    assert.ok(existsSync(join(dir, 'a', 'b', 'c')));
    makeDirectory(join(dir, 'a', 'b', 'c'));
  });

  it('every directory flag that cannot be created fails at once, in one line, and leaves no store file', async () => {
    const sample = sampleCapture(join(dir, 'd.pcap'));
    const notify = join(dir, 'notify.json');
    writeFileSync(
      notify,
      JSON.stringify({
        outbox: '/proc/nope/outbox',
        channels: { hook: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } },
        routes: [{ channels: ['hook'] }],
      }),
    );
    for (const [args, path] of [
      [['import', '--packets-dir', '/proc/nope/pk', '--db', join(dir, 'd1.duckdb'), '--no-progress', sample.path], '/proc/nope/pk'],
      [['capture', '-i', 'lo', '--keep-packets', '/proc/nope/kp', '--db', join(dir, 'd2.duckdb'), '--duration', '5'], '/proc/nope/kp'],
      [['capture', '-i', 'lo', '--notify-config', notify, '--db', join(dir, 'd3.duckdb'), '--duration', '5'], '/proc/nope/outbox'],
    ] as [string[], string][]) {
      const r = await runCli(args, { timeoutMs: 30_000 });
      assert.equal(r.signal, null, `${args.join(' ')}: it ended by itself (Node's recursive mkdir spun until killed)`);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, new RegExp(`cannot create directory ${path}(/[a-z]+)?: /proc/nope: ENOENT`), args.join(' '));
      assert.deepEqual(stackTraceLines(r.stderr), [], args.join(' '));
    }
    assert.equal(existsSync(join(dir, 'd1.duckdb')), false, 'the import made no store file');
  });

  it('a failed import prints no summary and leaves no store file; a partial one says how many files it read', async () => {
    const bad = join(dir, 'bad.pcap');
    writeFileSync(bad, 'garbage, not a capture');
    const db = join(dir, 'failed.duckdb');
    const r = await runCli(['import', '--db', db, '--no-progress', bad]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '', 'no "imported 1 file"');
    assert.match(r.stderr, /bad\.pcap: not a pcap or pcapng file/);
    assert.equal(existsSync(db), false, 'no empty store file');
    assert.equal(existsSync(`${db}.wal`), false);

    const sample = sampleCapture(join(dir, 'good.pcap'));
    const partial = await runCli(['import', '--db', db, '--no-progress', bad, sample.path]);
    assert.equal(partial.code, 1);
    assert.match(partial.stdout, /^imported 1 of 2 files in /);
    assert.ok(existsSync(db), 'the store holds the file that was read');
    // A failed file added to an existing store leaves the store in place.
    const again = await runCli(['import', '--db', db, '--no-progress', bad]);
    assert.equal(again.code, 1);
    assert.ok(existsSync(db));
  });

  describe('serve', () => {
    let serve: ServeProcess;
    before(async () => {
      serve = await startServe(dir);
    });
    after(() => serve?.stop());

    it("names the web client's address on start", async () => {
      const line = serve
        .output()
        .split('\n')
        .find((l) => l.includes('"webUrl"'));
      assert.ok(line, serve.output());
      const webUrl = JSON.parse(line).webUrl as string | null;
      if (webUrl === null) assert.match(line, /no web client: it is not built \(npm run build:web\)/);
      else {
        assert.equal(webUrl, `${serve.base}/`);
        const page = await fetch(webUrl);
        assert.equal(page.status, 200);
        assert.match(await page.text(), /<html/i);
      }
    });

    it('a port in use: one line, exit 1, no stack', async () => {
      const r = await runCli(['serve', '--port', String(serve.port), '--db', join(dir, 'other.duckdb')], { timeoutMs: 60_000 });
      assert.equal(r.code, 1);
      assert.deepEqual(stackTraceLines(r.stderr), []);
      assert.equal(
        r.stderr,
        `flowlens: cannot listen on 127.0.0.1:${serve.port}: the port is in use (another flowlens?): choose one with --port (FLOWLENS_PORT)\n`,
      );
    });
  });
});
