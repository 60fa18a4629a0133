/**
 * Zeek's conn.log, row by row: every trace of ../shared/corpus/zeek (51 cases from Zeek's own test
 * suite, each with the conn.log Zeek wrote) is imported into one DuckDB store through the library,
 * the flows are exported as conn.log rows (src/store/export-zeek.ts, its ASCII lines parsed back)
 * and compared with Zeek's, matched on proto and the 5-tuple (ts and uid cannot be compared). A row
 * is identical when proto, the 5-tuple, conn_state, history, orig_pkts, orig_ip_bytes, resp_pkts,
 * resp_ip_bytes, orig_bytes, resp_bytes and missed_bytes are equal and duration is within a
 * microsecond; service is compared as a set where flowlens's DPI names one. The differing rows are
 * printed, with the share of identical rows. Skips with a message when ../shared is absent.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { importFiles } from '../src/capture/import.js';
import { zeekAsciiLine, zeekConnRows, ZEEK_CONN_FIELDS } from '../src/store/export-zeek.js';
import { openStore } from '../src/store/index.js';
import { REPO_ROOT, runCli, withTempDir } from './helpers/cli.js';

const CORPUS = join(REPO_ROOT, '..', 'shared', 'corpus', 'zeek');
const unavailable = existsSync(join(CORPUS, 'cases.tsv')) ? null : `${CORPUS} is absent`;
if (unavailable) console.log(`# zeek-conn-corpus: skipped: ${unavailable}`);

/**
 * Zeek's rows that must come out identical: what flowlens reaches (216 of 227, 95.2%; the issue's
 * target is 95%). The 11 that differ are listed in the README: GTP with outer IP fragments
 * (flowlens does not reassemble IP fragments), a gap Zeek measures differently (cwd-navigation),
 * Zeek's X in a VXLAN ICMP row, and analyser quirks (FTP with invalid replies named by DPI, NTP's
 * late role flip). Raise it as rows are mended; it fails if one slips.
 */
const MIN_IDENTICAL = 216;

const COMPARED = [
  'conn_state',
  'history',
  'orig_pkts',
  'orig_ip_bytes',
  'resp_pkts',
  'resp_ip_bytes',
  'orig_bytes',
  'resp_bytes',
  'missed_bytes',
  'duration',
] as const;

type Row = Record<string, string>;

/** The rows of a conn.log in Zeek's ASCII format (btest's marker line and the headers skipped). */
function parseConnLog(text: string): Row[] {
  let fields: string[] = [];
  const rows: Row[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#fields\t')) fields = line.split('\t').slice(1);
    if (line === '' || line.startsWith('#')) continue;
    const values = line.split('\t');
    rows.push(Object.fromEntries(fields.map((f, i) => [f, values[i]])));
  }
  return rows;
}

const key = (r: Row) =>
  `${r.proto} ${r['id.orig_h']}:${r['id.orig_p']} > ${r['id.resp_h']}:${r['id.resp_p']}${r.proto === 'unknown_transport' ? ` ${r.ip_proto}` : ''}`;

/** The script directory under base/protocols/ that holds the analyser of a Zeek service name. */
const SERVICE_SCRIPTS: Record<string, string> = { krb_tcp: 'krb', 'ftp-data': 'ftp', dtls: 'ssl', gtpv1: 'tunnels', teredo: 'tunnels', vxlan: 'tunnels' };

/**
 * Whether Zeek could have named `service` in a case: in bare mode (-b) only the analysers of the
 * scripts the test loads run (the corpus README), so a service of another is not Zeek's to name.
 */
function serviceLoaded(service: string, flags: string, loaded: string): boolean {
  if (!flags.split(' ').includes('-b')) return true;
  return loaded.split(',').includes(`base/protocols/${SERVICE_SCRIPTS[service] ?? service}`);
}

function differences(want: Row, got: Row, flags: string, loaded: string): string[] {
  const out: string[] = [];
  for (const f of COMPARED) {
    const a = want[f];
    const b = got[f];
    if (f === 'duration' && a !== '-' && b !== '-' && Math.abs(Number(a) - Number(b)) <= 1.000001e-6) continue;
    if (a !== b) out.push(`${f} ${a} != ${b}`);
  }
  // Zeek's uids cannot be reproduced: whether the row is tunnelled, and through how many carriers.
  const parents = (r: Row) => (r.tunnel_parents === '-' ? 0 : r.tunnel_parents.split(',').length);
  if (parents(want) !== parents(got)) out.push(`tunnel_parents ${want.tunnel_parents} != ${got.tunnel_parents}`);
  const named = got.service === '-' ? [] : got.service.split(',').filter((s) => serviceLoaded(s, flags, loaded));
  const zeek = new Set(want.service.split(','));
  if (!named.every((s) => zeek.has(s))) out.push(`service ${want.service} != ${got.service}`);
  return out;
}

test("flowlens's conn.log export agrees with Zeek's on its own test traces", { skip: unavailable ?? undefined, timeout: 300_000 }, async () => {
  const cases = readFileSync(join(CORPUS, 'cases.tsv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => {
      const [caseId, trace, flags, , , loaded] = line.split('\t');
      return { caseId, trace, flags, loaded };
    });
  assert.equal(cases.length, 51, 'the corpus holds 51 cases');

  await withTempDir(async (dir) => {
    const store = await openStore({ db: join(dir, 'zeek.duckdb'), duckdbThreads: 1 });
    const ours = new Map<string, Row[]>();
    try {
      for (const trace of new Set(cases.map((c) => c.trace))) {
        await importFiles([join(CORPUS, 'traces', trace)], { store, detect: false });
      }
      await store.flush();
      for await (const flow of store.exportFlows()) {
        // Each row goes through the ASCII writer and is read back as Zeek's logs are.
        const list = ours.get(flow.iface) ?? [];
        for (const zeekRow of zeekConnRows(flow)) list.push(parseConnLog(`#fields\t${ZEEK_CONN_FIELDS.join('\t')}\n${zeekAsciiLine(zeekRow)}`)[0]);
        ours.set(flow.iface, list);
      }
    } finally {
      await store.close();
    }

    let total = 0;
    let identical = 0;
    const report: string[] = [];
    for (const c of cases) {
      const want = parseConnLog(readFileSync(join(CORPUS, 'expected', `${c.caseId}.conn.log`), 'utf8'));
      const pool = [...(ours.get(c.trace) ?? [])];
      for (const w of want) {
        total++;
        // Among our rows of the same proto and 5-tuple, the one closest to Zeek's.
        let best = -1;
        let bestDiff: string[] = ['no row of this proto and 5-tuple'];
        for (let i = 0; i < pool.length; i++) {
          if (key(pool[i]) !== key(w)) continue;
          const d = differences(w, pool[i], c.flags, c.loaded);
          if (best < 0 || d.length < bestDiff.length) {
            best = i;
            bestDiff = d;
          }
        }
        if (best >= 0) pool.splice(best, 1);
        if (best >= 0 && bestDiff.length === 0) identical++;
        else report.push(`${c.caseId}: ${key(w)} ${w.history}: ${bestDiff.join(', ')}`);
      }
    }
    const share = identical / total;
    console.log(`# zeek-conn-corpus: ${identical} of ${total} rows identical (${(share * 100).toFixed(1)}%); differing rows:`);
    for (const line of report) console.log(`#   ${line}`);
    assert.ok(identical >= MIN_IDENTICAL, `${identical} of Zeek's ${total} rows identical, fewer than ${MIN_IDENTICAL}`);
  });
});

test('flowlens export flows --format zeek and zeek-json write a conn.log of the imported flows', {
  skip: unavailable ?? undefined,
  timeout: 120_000,
}, async () => {
  await withTempDir(async (dir) => {
    const db = join(dir, 'cli.duckdb');
    const imported = await runCli(['import', join(CORPUS, 'traces', 'pppoe.pcap'), '--db', db, '--json']);
    assert.equal(imported.code, 0, imported.stderr);

    const ascii = await runCli(['export', 'flows', '--format', 'zeek', '--db', db]);
    assert.equal(ascii.code, 0, ascii.stderr);
    const lines = ascii.stdout.trimEnd().split('\n');
    assert.equal(lines[0], '#separator \\x09');
    assert.equal(
      lines.find((l) => l.startsWith('#fields\t')),
      `#fields\t${ZEEK_CONN_FIELDS.join('\t')}`,
    );
    assert.equal(lines.find((l) => l.startsWith('#types\t'))?.split('\t').length, ZEEK_CONN_FIELDS.length + 1);
    assert.match(lines.at(-1) ?? '', /^#close\t\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d$/);
    const rows = parseConnLog(ascii.stdout);
    // Zeek's 7 connections of this trace, by proto and 5-tuple.
    const want = parseConnLog(readFileSync(join(CORPUS, 'expected', 'core.pppoe.conn.log'), 'utf8'));
    assert.deepEqual(rows.map(key).sort(), want.map(key).sort());
    const dhcp = rows.find((r) => r['id.orig_p'] === '547');
    assert.equal(dhcp?.conn_state, 'S0');
    assert.equal(dhcp?.history, 'D');
    assert.equal(dhcp?.local_orig, 'T');

    const json = await runCli(['export', 'flows', '--format', 'zeek-json', '--db', db]);
    assert.equal(json.code, 0, json.stderr);
    const objects = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(objects.length, 7);
    const single = objects.find((o) => o['id.orig_p'] === 134);
    assert.ok(single, 'the router advertisement (type 134 to 133)');
    assert.equal(single.proto, 'icmp');
    assert.equal(single.ip_proto, 58);
    // One packet: no duration, so Zeek leaves duration and the byte counts unset (out of the JSON).
    assert.equal('duration' in single, false);
    assert.equal('orig_bytes' in single, false);
    assert.equal(single.orig_ip_bytes, 64);
    assert.equal(typeof (objects[0] as { ts: unknown }).ts, 'number');

    // Named networks decide local_orig / local_resp: the router's address only.
    const nets = join(dir, 'nets.json');
    writeFileSync(
      nets,
      JSON.stringify([
        { prefix: 'fe80::c801:eff:fe88:8/128', name: 'router', role: 'inside' },
        { prefix: '::/0', name: 'rest', role: 'outside' },
      ]),
    );
    const local = await runCli(['export', 'flows', '--format', 'zeek', '--db', db, '--networks', nets]);
    assert.equal(local.code, 0, local.stderr);
    const dhcpLocal = parseConnLog(local.stdout).find((r) => r['id.orig_p'] === '547');
    assert.deepEqual([dhcpLocal?.local_orig, dhcpLocal?.local_resp], ['T', 'F']);

    const hosts = await runCli(['export', 'hosts', '--format', 'zeek', '--db', db]);
    assert.notEqual(hosts.code, 0);
    assert.match(hosts.stderr, /exports flows only/);
  });
});
