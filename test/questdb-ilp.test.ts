// The QuestDB writer's ILP serialiser (record-sql.ts ilpRows, questdb.ts ilpBodies) against the
// reference, @questdb/nodejs-client's SenderBuffer driven through its row API (questdb.ts
// serializeBatch, the path the writer used before): records of every table, with texts that need
// escaping, empty texts, and zero and 2^53-1 numbers, must serialise to the same bytes. The lines
// are also parsed back, by the ILP text format (parse() below), to the values written.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createBuffer, SenderOptions } from '@questdb/nodejs-client';
import { ANOMALY, FLOW, HOST, TRAFFIC } from '../src/records/index.js';
import type { AnyRecordDef, ColumnInfo } from '../src/records/define.js';
import { ilpBodies, serializeBatch } from '../src/store/questdb.js';
import type { RecordBatch } from '../src/store/types.js';

const MAX = 2 ** 53 - 1;
const TEXTS = [
  'plain',
  '',
  'a b',
  'a,b',
  'a=b',
  ' ,= all three ',
  'say "hi"',
  'back\\slash',
  'ends with \\',
  '\\"',
  'line\nbreak',
  'cr\rlf',
  'tab\there',
  'ünïcødé ✓ 😀 名前',
  '"',
  '{"ports":120}',
  'lone \ud800 surrogate',
];
const TIMES = [0, 1, 999_999_999, 1_000_000_000, 1_700_000_000_000_123, MAX];
const POOLS: Record<ColumnInfo['type'], readonly unknown[]> = {
  time: TIMES,
  str: TEXTS,
  u8: [0, 6, 255],
  u16: [0, 443, 65535],
  // Every digit count, both sides of the writer's 2^31 and 2^53 paths and of its nine-digit halves.
  counter: [0, 1, 9, 10, 99, 123_456_789, 2 ** 31 - 1, 2 ** 31, 999_999_999, 1_000_000_000, 1_000_000_001, 10 ** 15 + 7, MAX, 2 ** 53, 2 ** 60],
  bool: [true, false],
};

/** n records of `def`, each column cycling through its type's pool at a different stride. */
function records(def: AnyRecordDef, n: number): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const r: Record<string, unknown> = {};
    def.list.forEach((c, k) => {
      const pool = POOLS[c.type];
      r[c.field] = pool[(i * (k + 1) + k) % pool.length];
    });
    out.push(r);
  }
  // Every text empty (only the numbers are written), and every text the hardest one.
  out.push(Object.fromEntries(def.list.map((c) => [c.field, c.type === 'str' ? '' : POOLS[c.type][0]])));
  out.push(Object.fromEntries(def.list.map((c) => [c.field, c.type === 'str' ? ' ,="\\\n\r😀' : POOLS[c.type].at(-1)])));
  return out;
}

const reference = (batch: RecordBatch): string => {
  const buf = createBuffer(new SenderOptions('http::addr=127.0.0.1:9000;protocol_version=1;'));
  serializeBatch(buf, batch);
  return buf.toBufferNew()?.toString('utf8') ?? '';
};
const ours = (batch: RecordBatch, maxBytes?: number): string => Buffer.concat(ilpBodies(batch, maxBytes).map((b) => b.body)).toString('utf8');

type Parsed = { table: string; tags: Map<string, string>; fields: Map<string, string>; at: string };

/**
 * ILP text (docs/reference/api/ilp/overview.md): `table[,tag=value...] field=value[,...] ts\n`. A
 * backslash makes the next character literal (in names, tag values and quoted strings); a space,
 * comma or equals sign ends a part outside quotes; a newline ends the row outside quotes and after
 * no backslash. Field values come back as written (strings without quotes, unescaped).
 */
function parse(text: string): Parsed[] {
  const rows: Parsed[] = [];
  let i = 0;
  /** Up to one of `stops`; a field value (`field`) that starts with a double quote is a quoted string. */
  const part = (stops: string, field = false): [string, string] => {
    let out = '';
    if (field && text[i] === '"') {
      for (let q = text[++i]; q !== '"'; q = text[++i]) {
        if (q === undefined) throw new Error('unterminated ILP string');
        out += q === '\\' ? text[++i] : q;
      }
      i++;
    }
    for (;;) {
      const ch = text[i++];
      if (ch === undefined) throw new Error('truncated ILP');
      if (ch === '\\') out += text[i++];
      else if (stops.includes(ch)) return [out, ch];
      else out += ch;
    }
  };
  while (i < text.length) {
    let [table, stop] = part(', ');
    const tags = new Map<string, string>();
    const fields = new Map<string, string>();
    while (stop === ',') {
      const [k] = part('=');
      let v: string;
      [v, stop] = part(', ');
      tags.set(k, v);
    }
    do {
      const [k] = part('=');
      let v: string;
      [v, stop] = part(', ', true);
      fields.set(k, v);
    } while (stop === ',');
    const [at, end] = part('\n');
    assert.equal(end, '\n');
    rows.push({ table, tags, fields, at });
  }
  return rows;
}

const EMPTY: RecordBatch = { flows: [], hosts: [], traffic: [], anomalies: [] };
const TABLES: [keyof RecordBatch, AnyRecordDef][] = [
  ['flows', FLOW],
  ['hosts', HOST],
  ['traffic', TRAFFIC],
  ['anomalies', ANOMALY],
];

describe('QuestDB ILP serialiser', () => {
  for (const [key, def] of TABLES) {
    test(`${def.table}: the same bytes as the client's SenderBuffer, and the values parse back`, () => {
      const rows = records(def, 300);
      const batch = { ...EMPTY, [key]: rows } as RecordBatch;
      const want = reference(batch);
      const got = ours(batch);
      const wantLines = want.split('\n');
      const gotLines = got.split('\n');
      assert.equal(gotLines.length, wantLines.length);
      for (let i = 0; i < wantLines.length; i++) assert.equal(gotLines[i], wantLines[i], `line ${i + 1}`);
      assert.ok(Buffer.from(got).equals(Buffer.from(want)));

      // Parsed back: every non-empty text and every number as written, empty texts absent.
      const parsed = parse(got);
      assert.equal(parsed.length, rows.length);
      parsed.forEach((p, i) => {
        const r = rows[i]!;
        assert.equal(p.table, def.table);
        assert.equal(p.at, (BigInt(r[def.designated.field] as number) * 1000n).toString());
        for (const c of def.list) {
          if (c.designated) continue;
          const symbol = c.questdbType === 'SYMBOL';
          const v = (symbol ? p.tags : p.fields).get(c.sql);
          const want = r[c.field];
          if (want === '') assert.equal(v, undefined, `${c.sql} is empty and not written`);
          else {
            const text =
              c.type === 'str'
                ? Buffer.from(want as string).toString('utf8')
                : c.type === 'bool'
                  ? want
                    ? 't'
                    : 'f'
                  : `${want}${c.type === 'time' ? 't' : 'i'}`;
            assert.equal(v, text, `row ${i + 1} ${c.sql}`);
          }
        }
        assert.equal(p.tags.size + p.fields.size, def.list.filter((c) => !c.designated && r[c.field] !== '').length);
      });
    });
  }

  test('escaping follows the ILP text format (tags, quoted strings, integers, timestamps)', () => {
    const flow = records(FLOW, 1)[0]!;
    Object.assign(flow, {
      node: 'a b,c=d\\e',
      iface: '',
      serverName: 'x "y" \\z\nw',
      appInfo: '',
      clientBytes: MAX,
      serverBytes: 0,
      final: true,
      ts: 1,
      lastSeen: 7,
    });
    const line = ours({ ...EMPTY, flows: [flow as never] });
    assert.match(line, /^flows,node=a\\ b\\,c\\=d\\\\e,/);
    assert.ok(!line.includes('iface='), 'an empty symbol is not written');
    assert.ok(!line.includes('app_info='), 'an empty string is not written');
    assert.ok(line.includes(',server_name="x \\"y\\" \\\\z\\\nw"'), line);
    assert.ok(line.includes(`client_bytes=${MAX}i`) && line.includes('server_bytes=0i'));
    assert.ok(line.includes('last_seen=7t') && line.includes('final=t'));
    assert.ok(line.endsWith(' 1000\n'), 'designated timestamp last, in ns');
  });

  test('bodies are bounded and split between rows; the row counts add up', () => {
    const batch: RecordBatch = {
      // Under the default bound (2 MiB) in one body, whatever columns a flow gains.
      flows: records(FLOW, 500) as never,
      hosts: records(HOST, 200) as never,
      traffic: records(TRAFFIC, 50) as never,
      anomalies: records(ANOMALY, 20) as never,
    };
    const rows = batch.flows.length + batch.hosts.length + batch.traffic.length + batch.anomalies!.length;
    const whole = ilpBodies(batch);
    assert.equal(whole.length, 1);
    assert.equal(whole[0]!.rows, rows);
    const max = 20_000;
    const parts = ilpBodies(batch, max);
    assert.ok(parts.length > 10, `${parts.length} bodies`);
    let longestLine = 0;
    for (const l of whole[0]!.body.toString().split('\n')) longestLine = Math.max(longestLine, Buffer.byteLength(l) + 1);
    for (const p of parts) {
      const text = p.body.toString();
      assert.ok(text.endsWith('\n'));
      assert.ok(p.body.length < max + longestLine, `${p.body.length} bytes`);
      assert.equal(parse(text).length, p.rows);
    }
    assert.equal(
      parts.reduce((n, p) => n + p.rows, 0),
      rows,
    );
    assert.ok(Buffer.concat(parts.map((p) => p.body)).equals(whole[0]!.body));
  });

  test('a value of the wrong type throws and nothing of the batch is serialised', () => {
    const good = records(FLOW, 3);
    for (const [field, bad] of [
      ['clientBytes', 1.5],
      ['clientBytes', '12'],
      ['ts', Number.NaN],
      ['final', 1],
      ['serverName', 7],
      ['node', null],
    ] as const) {
      const rows = good.map((r) => ({ ...r }));
      rows[2]![field] = bad;
      assert.throws(() => ilpBodies({ ...EMPTY, flows: rows as never }), new RegExp(`flows\\.${field}`), `${field} = ${String(bad)}`);
    }
  });
});
