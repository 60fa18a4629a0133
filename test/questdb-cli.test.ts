// `flowlens import` and `flowlens export` with the QuestDB back end, run as the real CLI against the
// local stand-ins of test/helpers/fake-questdb.ts (QuestDB's ILP/HTTP endpoint, and a PostgreSQL
// wire stub for the schema statements and reads): stdout carries only the command's JSON, the
// store's log lines go to stderr, and import does not exit 0 while rows sit only in the spool.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LINKTYPE, byTime, tcpConversation, toFrames, ts } from './helpers/frames.js';
import { pcap, writeCapture } from './helpers/pcap-writer.js';
import { runCli, withTempDir } from './helpers/cli.js';
import { startFakePg, startFakeQuestDb, type FakePg, type FakeQuestDb, type IlpRow } from './helpers/fake-questdb.js';

const BASE = 1_700_000_000;

/** A capture of `n` short TCP conversations. */
function capture(dir: string, n: number): string {
  const frames = [];
  for (let i = 0; i < n; i++) {
    frames.push(
      ...toFrames(
        LINKTYPE.ETHERNET,
        tcpConversation({
          client: { ip: `10.9.0.${i + 1}`, port: 40_000 + i },
          server: { ip: '10.9.1.1', port: 443 },
          start: ts(BASE + i),
          data: [
            { from: 'client', bytes: 100 },
            { from: 'server', bytes: 900 },
          ],
          close: 'fin',
        }),
      ),
    );
  }
  return writeCapture(join(dir, 'in.pcap'), pcap({ linktype: LINKTYPE.ETHERNET }, byTime(frames)));
}

function questdbArgs(ilp: FakeQuestDb, pg: FakePg, spoolDir: string): string[] {
  // Short client timeouts so that a refused request fails in a fraction of a second.
  return ['--questdb', `http::addr=127.0.0.1:${ilp.port};retry_timeout=200;request_timeout=1000;`, '--questdb-pg', pg.url, '--spool-dir', spoolDir];
}

const spoolFiles = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith('.ilp'));

/** Each stdout line, parsed: fails on anything that is not JSON. */
function jsonLines(stdout: string): unknown[] {
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as unknown;
      } catch {
        throw new assert.AssertionError({ message: `stdout line is not JSON: ${l}` });
      }
    });
}

/** (table, designated timestamp, dedup key) of each ILP row: a row sent twice shows up twice. */
const rowKeys = (rows: IlpRow[]): string[] =>
  rows.map((r) => `${r.table} ${r.at} ${JSON.stringify(r.columns.flow_id ?? r.columns.ip ?? r.columns.anomaly_id ?? r.columns.node ?? null)}`);

async function withFakes(fn: (ilp: FakeQuestDb, pg: FakePg) => Promise<void>): Promise<void> {
  const ilp = await startFakeQuestDb();
  const pg = await startFakePg();
  try {
    await fn(ilp, pg);
  } finally {
    await ilp.close();
    await pg.close();
  }
}

describe('flowlens import/export with QuestDB', () => {
  it('import --json: QuestDB refuses, then recovers within --spool-wait: stdout is the summary only, logs on stderr, exit 0, rows arrive once', async () => {
    await withTempDir((dir) =>
      withFakes(async (ilp, pg) => {
        const file = capture(dir, 5);
        const spoolDir = join(dir, 'spool');
        ilp.mode = 'refuse';
        // Accept again 1.5 s after the first refusal (the CLI takes a while to start).
        let recoverAt = 0;
        const recover = setInterval(() => {
          if (!recoverAt && ilp.requests.some((q) => q.status === 503)) recoverAt = Date.now() + 1_500;
          if (recoverAt && Date.now() >= recoverAt) ilp.mode = 'accept';
        }, 20);
        try {
          const r = await runCli(['--log-format', 'json', 'import', file, '--json', '--no-progress', '--spool-wait', '30', ...questdbArgs(ilp, pg, spoolDir)]);
          assert.equal(r.code, 0, r.stderr);
          const out = jsonLines(r.stdout);
          assert.equal(out.length, 1, `one JSON object on stdout, got: ${r.stdout}`);
          const summary = out[0] as { flows: number; packets: number };
          assert.equal(summary.flows, 5);
          // The writer's log lines, as JSON lines on stderr.
          const logs = r.stderr
            .split('\n')
            .filter((l) => l.startsWith('{'))
            .map((l) => JSON.parse(l) as { msg: string; level: number });
          assert.ok(
            logs.some((l) => /ILP write failed/.test(l.msg)),
            r.stderr,
          );
          assert.ok(
            logs.some((l) => /accepted again/.test(l.msg)),
            r.stderr,
          );
          assert.ok(ilp.requests.filter((q) => q.status === 503).length >= 2, 'QuestDB refused at first');
          assert.deepEqual(spoolFiles(spoolDir), [], 'the spool is drained');
          const flows = ilp.rows.filter((row) => row.table === 'flows');
          assert.equal(flows.length, 5, 'every flow arrived');
          const keys = rowKeys(ilp.rows);
          assert.equal(new Set(keys).size, keys.length, 'no row arrived twice');
        } finally {
          clearInterval(recover);
        }
      }),
    );
  });

  it('import: QuestDB refuses for longer than --spool-wait: exit 75 and one line saying what waits, where and how it will be sent', async () => {
    await withTempDir((dir) =>
      withFakes(async (ilp, pg) => {
        const file = capture(dir, 3);
        const spoolDir = join(dir, 'spool');
        ilp.mode = 'refuse';
        const started = Date.now();
        const r = await runCli(['--log-level', 'silent', 'import', file, '--json', '--no-progress', ...questdbArgs(ilp, pg, spoolDir)], {
          env: { FLOWLENS_SPOOL_WAIT: '1' },
        });
        assert.equal(r.code, 75, r.stderr);
        assert.ok(Date.now() - started < 30_000, 'the wait is bounded by FLOWLENS_SPOOL_WAIT');
        jsonLines(r.stdout);
        const lines = r.stderr.split('\n').filter((l) => l !== '');
        assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
        const batches = spoolFiles(spoolDir).length;
        assert.ok(batches > 0);
        assert.match(
          lines[0]!,
          new RegExp(`^flowlens: ${batches} batch(es)? of rows \\(.+\\) wait in the QuestDB outage spool ${spoolDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')},`),
        );
        assert.match(lines[0]!, /--spool-wait 1 s/);
        assert.match(lines[0]!, /the next flowlens process .* sends them/);
        assert.equal(ilp.rows.length, 0);
      }),
    );
  });

  it('export flows: stdout is JSON lines only; no DDL, no spool replay', async () => {
    await withTempDir((dir) =>
      withFakes(async (ilp, pg) => {
        const spoolDir = join(dir, 'spool');
        // A batch left in the spool by a writer that could not deliver it.
        ilp.mode = 'refuse';
        const w = await runCli(['--log-level', 'silent', 'import', capture(dir, 2), '--no-progress', '--spool-wait', '0', ...questdbArgs(ilp, pg, spoolDir)]);
        assert.equal(w.code, 75, w.stderr);
        const left = spoolFiles(spoolDir);
        ilp.mode = 'accept';
        ilp.requests.length = 0;
        pg.statements.length = 0;
        pg.answer = (sql) =>
          /\bFROM flows\b/.test(sql)
            ? {
                columns: [{ name: 'flow_id' }, { name: 'first_seen_us', type: 'int8' }, { name: 'last_seen_us', type: 'int8' }, { name: 'transport' }],
                rows: [
                  ['a1', '1700000000000000', '1700000001000000', 'tcp'],
                  ['a2', '1700000002000000', '1700000003000000', 'udp'],
                ],
              }
            : null;
        const r = await runCli(['--log-format', 'json', 'export', 'flows', ...questdbArgs(ilp, pg, spoolDir)]);
        assert.equal(r.code, 0, r.stderr);
        // The export names fields as the API does: the record's flowId is `id`.
        const rows = jsonLines(r.stdout) as { id: string }[];
        assert.deepEqual(
          rows.map((f) => f.id),
          ['a1', 'a2'],
        );
        assert.deepEqual(
          pg.statements.filter((s) => /^\s*(CREATE|ALTER|DROP|TRUNCATE|INSERT|UPDATE)\b/i.test(s)),
          [],
          'no DDL',
        );
        assert.equal(ilp.requests.length, 0, 'the spool is not replayed');
        assert.deepEqual(spoolFiles(spoolDir), left);
      }),
    );
  });
});
