// Local stand-ins for QuestDB's two endpoints, for tests that run without a QuestDB server:
// - startFakeQuestDb: the ILP/HTTP endpoint (POST /write, 204 on success), which can refuse (503)
//   or reject (400) and keeps the rows it accepted, parsed;
// - startFakePg: a minimal PostgreSQL wire protocol server that records every statement and
//   answers from a small table of canned results (tables(), table_columns(), wal_tables(), reads
//   of flows). It checks no SQL: it lets the store and the CLI run, and shows what they send.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';

// ---------------------------------------------------------------------------------------------
// ILP line parsing (protocol version 1 text), enough to check what the server would store.

export type IlpValue = { type: 'symbol' | 'string'; value: string } | { type: 'int' | 'timestamp'; value: number } | { type: 'bool'; value: boolean };

export interface IlpRow {
  table: string;
  columns: Record<string, IlpValue>;
  /** Designated timestamp, nanoseconds (the client posts to /write?precision=n). */
  at: number;
}

/** Splits at `sep` outside quotes, honouring backslash escapes. */
function splitUnescaped(s: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '\\' && i + 1 < s.length) {
      cur += ch + s[i + 1];
      i++;
    } else if (ch === '"') {
      quoted = !quoted;
      cur += ch;
    } else if (ch === sep && !quoted) {
      parts.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  parts.push(cur);
  return parts;
}

const unescapeIlp = (s: string): string => s.replace(/\\(.)/g, '$1');

function parseField(raw: string): IlpValue {
  if (raw.startsWith('"')) return { type: 'string', value: unescapeIlp(raw.slice(1, -1)) };
  if (raw === 't' || raw === 'true') return { type: 'bool', value: true };
  if (raw === 'f' || raw === 'false') return { type: 'bool', value: false };
  if (raw.endsWith('i')) return { type: 'int', value: Number(raw.slice(0, -1)) };
  if (raw.endsWith('t')) return { type: 'timestamp', value: Number(raw.slice(0, -1)) };
  throw new Error(`unexpected ILP field value ${raw}`);
}

export function parseIlp(body: string): IlpRow[] {
  const rows: IlpRow[] = [];
  for (const line of body.split('\n')) {
    if (line === '') continue;
    const [head, fields, at, ...rest] = splitUnescaped(line, ' ');
    assert.equal(rest.length, 0, `unexpected ILP line ${line}`);
    const [table, ...tags] = splitUnescaped(head!, ',');
    const columns: Record<string, IlpValue> = {};
    for (const tag of tags) {
      const [k, v] = splitUnescaped(tag, '=');
      columns[unescapeIlp(k!)] = { type: 'symbol', value: unescapeIlp(v!) };
    }
    for (const field of splitUnescaped(fields!, ',')) {
      const eq = field.indexOf('=');
      columns[field.slice(0, eq)] = parseField(field.slice(eq + 1));
    }
    rows.push({ table: unescapeIlp(table!), columns, at: Number(at) });
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// A fake QuestDB ILP/HTTP endpoint.

export interface FakeQuestDb {
  port: number;
  /** 'accept': 204 and keep the rows; 'refuse': 503 and keep nothing; 'reject': 400 (bad data). */
  mode: 'accept' | 'refuse' | 'reject';
  rows: IlpRow[];
  requests: { path: string; status: number; authorization?: string }[];
  close(): Promise<void>;
}

export async function startFakeQuestDb(port = 0): Promise<FakeQuestDb> {
  const fake: FakeQuestDb = { port: 0, mode: 'accept', rows: [], requests: [], close: async () => undefined };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      let status: number;
      if (req.method !== 'POST' || !path.startsWith('/write')) status = 404;
      else if (fake.mode === 'refuse') status = 503;
      else if (fake.mode === 'reject') status = 400;
      else {
        fake.rows.push(...parseIlp(Buffer.concat(chunks).toString('utf8')));
        status = 204;
      }
      fake.requests.push({ path, status, authorization: req.headers.authorization });
      if (status === 204) res.writeHead(204).end();
      else res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'error', message: 'fake refusal' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  fake.port = (server.address() as AddressInfo).port;
  fake.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return fake;
}

// ---------------------------------------------------------------------------------------------
// A fake PostgreSQL wire endpoint (protocol 3.0: start-up without a password, simple queries, and
// the extended protocol's Parse/Bind/Describe/Execute/Close/Sync/Flush with row-limited Execute and
// PortalSuspended, which pg-cursor uses).

/** A canned result: column names with a type (text, boolean, int8), rows as text or null. */
export interface FakeResult {
  columns: { name: string; type?: 'text' | 'bool' | 'int8' }[];
  rows: (string | null)[][];
}

/** A table as tables() and table_columns() describe it. */
export interface FakeTable {
  dedup: boolean;
  upsertKeys: string[];
  columns: string[];
  ttlValue: number;
  ttlUnit: string;
}

export interface FakePg {
  port: number;
  url: string;
  /** Every statement received, in order (simple queries and Parse). */
  statements: string[];
  /** The row limit of every Execute message received. */
  executes: number[];
  tables: Map<string, FakeTable>;
  /** Answers for reads not covered by the meta functions; null: an empty result. */
  answer: (sql: string) => FakeResult | null;
  close(): Promise<void>;
}

const TYPE_OID = { text: 25, bool: 16, int8: 20 } as const;

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const cstr = (s: string) => Buffer.from(`${s}\0`, 'utf8');
const i16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const i32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

function rowDescription(r: FakeResult): Buffer {
  const fields = r.columns.map((c) => Buffer.concat([cstr(c.name), i32(0), i16(0), i32(TYPE_OID[c.type ?? 'text']), i16(-1), i32(-1), i16(0)]));
  return message('T', Buffer.concat([i16(r.columns.length), ...fields]));
}

function dataRow(row: (string | null)[]): Buffer {
  const cols = row.map((v) => (v === null ? i32(-1) : Buffer.concat([i32(Buffer.byteLength(v)), Buffer.from(v, 'utf8')])));
  return message('D', Buffer.concat([i16(row.length), ...cols]));
}

const READY = message('Z', Buffer.from('I'));

/** The canned answer for a statement: the meta functions from `tables`, the rest from `answer`. */
function resultFor(fake: FakePg, sql: string): FakeResult | null {
  const create = /^CREATE TABLE IF NOT EXISTS (\w+) \(([\s\S]*)\)[^)]*DEDUP UPSERT KEYS\(([^)]*)\)\s*$/i.exec(sql.trim());
  if (create) {
    if (!fake.tables.has(create[1]!)) {
      const columns = create[2]!.split(',').map((d) => d.trim().split(/\s+/)[0]!);
      fake.tables.set(create[1]!, { dedup: true, upsertKeys: create[3]!.split(',').map((k) => k.trim()), columns, ttlValue: 0, ttlUnit: 'HOUR' });
    }
    return null;
  }
  const dedup = /^ALTER TABLE (\w+) DEDUP ENABLE UPSERT KEYS\(([^)]*)\)$/i.exec(sql.trim());
  if (dedup) {
    const t = fake.tables.get(dedup[1]!);
    if (t) Object.assign(t, { dedup: true, upsertKeys: dedup[2]!.split(',').map((k) => k.trim()) });
    return null;
  }
  const ttl = /^ALTER TABLE (\w+) SET TTL (\d+) DAYS$/i.exec(sql.trim());
  if (ttl) {
    const t = fake.tables.get(ttl[1]!);
    if (t) Object.assign(t, { ttlValue: Number(ttl[2]), ttlUnit: 'DAY' });
    return null;
  }
  if (/FROM tables\(\)/i.test(sql)) {
    return {
      columns: [{ name: 'id', type: 'int8' }, { name: 'table_name' }, { name: 'dedup', type: 'bool' }, { name: 'ttlValue', type: 'int8' }, { name: 'ttlUnit' }],
      rows: [...fake.tables].map(([name, t], i) => [String(i + 1), name, t.dedup ? 't' : 'f', String(t.ttlValue), t.ttlUnit]),
    };
  }
  const columns = /FROM table_columns\('(\w+)'\)/i.exec(sql);
  if (columns) {
    const t = fake.tables.get(columns[1]!);
    return {
      columns: [{ name: 'column' }, { name: 'type' }, { name: 'designated', type: 'bool' }, { name: 'upsertKey', type: 'bool' }],
      rows: (t?.columns ?? []).map((c) => [c, 'VARCHAR', c === 'ts' ? 't' : 'f', t!.upsertKeys.includes(c) ? 't' : 'f']),
    };
  }
  if (/FROM wal_tables\(\)/i.test(sql)) {
    return {
      columns: [{ name: 'name' }, { name: 'suspended', type: 'bool' }, { name: 'writerTxn', type: 'int8' }, { name: 'sequencerTxn', type: 'int8' }],
      rows: [...fake.tables.keys()].map((name) => [name, 'f', '1', '1']),
    };
  }
  return fake.answer(sql);
}

export async function startFakePg(): Promise<FakePg> {
  const sockets = new Set<Socket>();
  const fake: FakePg = { port: 0, url: '', statements: [], executes: [], tables: new Map(), answer: () => null, close: async () => undefined };
  let pid = 1000;
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let started = false;
    const statements = new Map<string, string>();
    const portals = new Map<string, { result: FakeResult | null; offset: number; sql: string }>();
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (!started) {
          if (buf.length < 8) return;
          const len = buf.readInt32BE(0);
          if (buf.length < len) return;
          const code = buf.readInt32BE(4);
          buf = buf.subarray(len);
          if (code === 80877102) {
            socket.end(); // CancelRequest: nothing runs long enough here to cancel
            return;
          }
          if (code === 80877103) {
            socket.write('N'); // SSLRequest: no TLS here
            continue;
          }
          started = true;
          socket.write(Buffer.concat([message('R', i32(0)), message('K', Buffer.concat([i32(pid++), i32(42)])), READY]));
          continue;
        }
        if (buf.length < 5) return;
        const type = String.fromCharCode(buf[0]!);
        const len = buf.readInt32BE(1);
        if (buf.length < len + 1) return;
        const body = buf.subarray(5, len + 1);
        buf = buf.subarray(len + 1);
        const strings = body.toString('utf8').split('\0');
        const out: Buffer[] = [];
        if (type === 'Q') {
          const sql = strings[0]!;
          fake.statements.push(sql);
          const r = resultFor(fake, sql);
          if (r) out.push(rowDescription(r), ...r.rows.map(dataRow), message('C', cstr(`SELECT ${r.rows.length}`)));
          else out.push(message('C', cstr('OK')));
          out.push(READY);
        } else if (type === 'P') {
          statements.set(strings[0]!, strings[1]!);
          fake.statements.push(strings[1]!);
          out.push(message('1', Buffer.alloc(0)));
        } else if (type === 'B') {
          const sql = statements.get(strings[1]!) ?? '';
          portals.set(strings[0]!, { result: resultFor(fake, sql), offset: 0, sql });
          out.push(message('2', Buffer.alloc(0)));
        } else if (type === 'D') {
          const portal = portals.get(body.subarray(1).toString('utf8').split('\0')[0]!);
          out.push(portal?.result ? rowDescription(portal.result) : message('n', Buffer.alloc(0)));
        } else if (type === 'E') {
          const name = strings[0]!;
          const maxRows = body.readInt32BE(Buffer.byteLength(name) + 1);
          fake.executes.push(maxRows);
          const portal = portals.get(name);
          const rows = portal?.result?.rows ?? [];
          const end = maxRows > 0 ? Math.min(rows.length, portal!.offset + maxRows) : rows.length;
          out.push(...rows.slice(portal?.offset ?? 0, end).map(dataRow));
          if (portal) portal.offset = end;
          if (end < rows.length) out.push(message('s', Buffer.alloc(0)));
          else out.push(message('C', cstr(portal?.result ? `SELECT ${rows.length}` : 'OK')));
        } else if (type === 'C') {
          portals.delete(body.subarray(1).toString('utf8').split('\0')[0]!);
          out.push(message('3', Buffer.alloc(0)));
        } else if (type === 'S') {
          out.push(READY);
        } else if (type === 'X') {
          socket.end();
          return;
        }
        // 'H' (Flush): everything is written at once anyway.
        if (out.length) socket.write(Buffer.concat(out));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.port = (server.address() as AddressInfo).port;
  fake.url = `postgres://admin:quest@127.0.0.1:${fake.port}/qdb`;
  fake.close = () =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return fake;
}
