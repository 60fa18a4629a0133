// The QuestDB writer and outage spool, tested without QuestDB: a local HTTP server imitates the
// ILP/HTTP endpoint (POST /write, 204 No Content on success) and refuses for a while, then accepts.
// Also checks schema/questdb.sql against the record types and what the writer sends.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createIlpWriter, parseSchemaSql, sampleByStride, isoMicros, SCHEMA_URL, ilpBodies } from '../src/store/questdb.js';
import { SpoolFullError, type SpoolLogger } from '../src/store/spool.js';
import { ANOMALY, type AnyRecordDef, emptyRecord, FLOW, HOST, TRAFFIC } from '../src/records/index.js';
import type { AnomalyRecord, FlowRecord, HostRecord, RecordBatch, TrafficRecord } from '../src/store/types.js';
import { parseIlp, startFakeQuestDb, type IlpRow, type IlpValue } from './helpers/fake-questdb.js';

// ---------------------------------------------------------------------------------------------
// Fixtures

const T0 = 1_700_000_000_000_000; // µs

function flow(i: number, extra: Partial<FlowRecord> = {}): FlowRecord {
  return {
    ...emptyRecord(FLOW),
    ts: T0 + i * 1_000_000 + 123,
    flowId: i.toString(16).padStart(16, '0'),
    node: 'node-a',
    source: '',
    iface: 'eth0',
    firstSeen: T0 + i * 1_000_000,
    lastSeen: T0 + i * 1_000_000 + 500_000,
    transport: 'tcp',
    ipProto: 6,
    clientIp: '10.0.0.1',
    clientPort: 40000 + i,
    serverIp: '2001:db8::1',
    serverPort: 443,
    clientPackets: 3,
    clientBytes: 180 + i,
    serverPackets: 2,
    serverBytes: 1500,
    clientTcpFlags: 0x1b,
    serverTcpFlags: 0x12,
    tcpState: 'established',
    final: i % 2 === 0,
    app: 'tls',
    serverName: 'example.com',
    confidence: 'dpi',
    firstPackets: '+74 -74 +66 +583 -1434',
    appInfo: '{"ja4":"t13d1516h2_8daaf6152771_b186095e22b6","alpn":"h2,http/1.1"}',
    duration: 1_500_000,
    endReason: 'fin',
    ...extra,
  };
}

const host = (i: number): HostRecord => ({
  ts: T0 + i * 10_000_000,
  node: 'node-a',
  source: '',
  ip: `10.0.0.${i}`,
  bytesSent: 100,
  bytesReceived: 200,
  packetsSent: 1,
  packetsReceived: 2,
  flowsInitiated: 1,
  flowsReceived: 0,
  peers: 1,
  country: '',
  asn: 0,
  asOrg: '',
  network: '',
});
const traffic = (i: number): TrafficRecord => ({ ts: T0 + i * 10_000_000, node: 'node-a', bytes: 300, packets: 3, flows: 1, source: '' });
const anomaly = (i: number): AnomalyRecord => ({
  ts: T0,
  anomalyId: `a${i}`,
  node: 'node-a',
  kind: 'PORT_SCAN',
  severity: 'high',
  source: '10.0.0.9',
  targetIp: '10.0.0.1',
  targetPort: 0,
  startedAt: T0,
  lastSeen: T0 + i,
  state: 'active',
  packets: 10,
  bytes: 600,
  evidence: '{"ports":120}',
  summary: '10.0.0.9 probed 120 ports on 10.0.0.1',
  evidenceFlows: '2 0123456789abcdef fedcba9876543210',
});

function batch(i: number): RecordBatch {
  return { flows: [flow(2 * i), flow(2 * i + 1)], hosts: [host(i)], traffic: [traffic(i)], anomalies: [anomaly(i)] };
}

interface CapturedLog extends SpoolLogger {
  lines: { level: string; msg: string }[];
}

function captureLog(): CapturedLog {
  const lines: { level: string; msg: string }[] = [];
  return {
    lines,
    info: (_o, msg) => lines.push({ level: 'info', msg }),
    warn: (_o, msg) => lines.push({ level: 'warn', msg }),
    error: (_o, msg) => lines.push({ level: 'error', msg }),
  };
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Short client timeouts so that a refused request fails in a fraction of a second. */
const conf = (port: number, extra = ''): string => `http::addr=127.0.0.1:${port};retry_timeout=200;request_timeout=1000;auto_flush_interval=50;${extra}`;

const flowIds = (rows: IlpRow[]): string[] => rows.filter((r) => r.table === 'flows').map((r) => (r.columns.flow_id as { value: string }).value);

// ---------------------------------------------------------------------------------------------

describe('QuestDB ILP writer and outage spool', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flowlens-spool-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('rows sent while QuestDB refuses are spooled, then replayed once each and in order', async () => {
    const fake = await startFakeQuestDb();
    const log = captureLog();
    const ilp = await createIlpWriter({ ilp: conf(fake.port), spoolDir: join(dir, 'outage'), log, retryMinMs: 50, retryMaxMs: 100 });
    ilp.writer.start();
    try {
      await ilp.write(batch(0));
      await ilp.writer.flush();
      assert.equal(fake.rows.length, 5);

      fake.mode = 'refuse';
      const depths: number[] = [];
      for (let i = 1; i <= 4; i++) {
        await ilp.write(batch(i));
        await ilp.writer.flush(); // one request body (one spool file) per batch
        depths.push(ilp.writer.state().spool.batches);
      }
      assert.deepEqual(depths, [1, 2, 3, 4], 'spool depth rises by one batch per flush');
      assert.ok(ilp.writer.state().spool.bytes > 0);
      assert.equal(ilp.writer.state().up, false);
      assert.equal(log.lines.filter((l) => l.level === 'error').length, 1, 'exactly one "down" line');
      assert.equal(fake.rows.length, 5, 'nothing stored while refusing');

      fake.mode = 'accept';
      await until(() => ilp.writer.state().spool.batches === 0, 'spool to drain');
      // Written after recovery: goes straight to the server, behind the replayed batches.
      await ilp.write(batch(5));
      await ilp.writer.flush();

      const expected = [0, 1, 2, 3, 4, 5].flatMap((i) => [2 * i, 2 * i + 1]).map((n) => n.toString(16).padStart(16, '0'));
      assert.deepEqual(flowIds(fake.rows), expected, 'every flow exactly once, in write order');
      assert.equal(fake.rows.filter((r) => r.table === 'anomalies').length, 6);
      assert.deepEqual(ilp.writer.state().spool, { batches: 0, bytes: 0 });
      assert.equal(ilp.writer.state().up, true);
      assert.equal(log.lines.filter((l) => l.level === 'info' && /accepted again/.test(l.msg)).length, 1, 'exactly one "recovered" line');
      assert.deepEqual(
        (await readdir(join(dir, 'outage'))).filter((n) => n.endsWith('.ilp')),
        [],
      );
      assert.ok(fake.requests.every((r) => r.path === '/write?precision=n'));
    } finally {
      await ilp.writer.close();
      await fake.close();
    }
  });

  test('a full spool refuses the batch with an error instead of dropping it silently', async () => {
    const fake = await startFakeQuestDb();
    fake.mode = 'refuse';
    const log = captureLog();
    const ilp = await createIlpWriter({ ilp: conf(fake.port), spoolDir: join(dir, 'full'), spoolMaxBytes: 4096, log, retryMinMs: 50, retryMaxMs: 100 });
    ilp.writer.start();
    try {
      let stored = 0;
      let error: unknown = null;
      for (let i = 0; i < 50 && !error; i++) {
        try {
          await ilp.write(batch(i));
          await ilp.writer.flush();
          stored = i + 1;
        } catch (err) {
          error = err;
        }
      }
      assert.ok(error instanceof SpoolFullError, `expected SpoolFullError, got ${String(error)}`);
      assert.match((error as Error).message, /spool is full .* NOT stored/);
      assert.ok(
        log.lines.some((l) => l.level === 'error' && /spool is full/.test(l.msg)),
        'the loss is logged',
      );
      const depth = ilp.writer.state().spool;
      assert.equal(depth.batches, stored);
      assert.ok(depth.bytes <= 4096);

      fake.mode = 'accept';
      await until(() => ilp.writer.state().spool.batches === 0, 'spool to drain');
      const expected = Array.from({ length: stored }, (_, i) => [2 * i, 2 * i + 1])
        .flat()
        .map((n) => n.toString(16).padStart(16, '0'));
      assert.deepEqual(flowIds(fake.rows), expected, 'what was spooled arrives; the refused batch does not reappear');
    } finally {
      await ilp.writer.close();
      await fake.close();
    }
  });

  test("write() does not wait for its rows' delivery, and a failure of that delivery reaches flush()", async () => {
    const fake = await startFakeQuestDb();
    fake.mode = 'refuse';
    const log = captureLog();
    // Every write starts a delivery (auto_flush_rows=1); the spool cannot hold even one body.
    const ilp = await createIlpWriter({ ilp: conf(fake.port, 'auto_flush_rows=1;'), spoolDir: join(dir, 'deferred'), spoolMaxBytes: 16, log, retryMinMs: 50 });
    ilp.writer.start();
    try {
      await ilp.write(batch(0));
      // Resolved while the request is still out (the server refuses after ~retry_timeout).
      assert.ok(ilp.writer.state().inFlightBytes > 0, 'the body is still on its way when write() resolves');
      await assert.rejects(() => ilp.writer.flush(), SpoolFullError);
      assert.ok(log.lines.some((l) => l.level === 'error' && /spool is full/.test(l.msg)));
      assert.equal(fake.rows.length, 0);
      // Reported once: the next flush has nothing left to report.
      await ilp.writer.flush();
    } finally {
      await ilp.writer.close();
      await fake.close();
    }
  });

  test('a spool left on disk by a previous process is replayed at start-up', async () => {
    // Find a port with nothing listening, so the first process meets "connection refused".
    const probe = await startFakeQuestDb();
    const port = probe.port;
    await probe.close();
    const spoolDir = join(dir, 'restart');

    const first = await createIlpWriter({ ilp: conf(port), spoolDir, log: captureLog(), retryMinMs: 50, retryMaxMs: 100 });
    first.writer.start();
    for (let i = 0; i < 3; i++) {
      await first.write(batch(i));
      await first.writer.flush();
    }
    await first.write(batch(3)); // still pending in memory: close() must spool it, not lose it
    await first.writer.close();
    assert.equal((await readdir(spoolDir)).filter((n) => n.endsWith('.ilp')).length, 4);

    const fake = await startFakeQuestDb(port);
    const log = captureLog();
    const second = await createIlpWriter({ ilp: conf(port), spoolDir, log, retryMinMs: 50, retryMaxMs: 100 });
    try {
      assert.equal(second.writer.state().spool.batches, 4, 'the new process sees the old spool');
      assert.ok(log.lines.some((l) => l.level === 'warn' && /previous run/.test(l.msg)));
      // Written before the replay: must queue behind the old batches, not overtake them.
      await second.write(batch(4));
      second.writer.start();
      await second.writer.flush();
      await until(() => second.writer.state().spool.batches === 0, 'replay');
      const expected = [0, 1, 2, 3, 4].flatMap((i) => [2 * i, 2 * i + 1]).map((n) => n.toString(16).padStart(16, '0'));
      assert.deepEqual(flowIds(fake.rows), expected);
    } finally {
      await second.writer.close();
      await fake.close();
    }
  });

  test('a batch the server keeps refusing as invalid is set aside, not replayed forever', async () => {
    const fake = await startFakeQuestDb();
    fake.mode = 'reject';
    const log = captureLog();
    const spoolDir = join(dir, 'poison');
    const ilp = await createIlpWriter({ ilp: conf(fake.port), spoolDir, log, retryMinMs: 20, retryMaxMs: 40 });
    ilp.writer.start();
    try {
      await ilp.write(batch(0));
      await ilp.writer.flush();
      await until(() => ilp.writer.state().spool.batches === 0, 'refused batch to be set aside');
      const rejected = await readdir(join(spoolDir, 'rejected'));
      assert.equal(rejected.filter((n) => n.endsWith('.ilp')).length, 1);
      const reason = await readFile(join(spoolDir, 'rejected', rejected.find((n) => n.endsWith('.reason.txt'))!), 'utf8');
      assert.match(reason, /statusCode=400/);
      // QuestDB says what is wrong with the line in the response body: that text is kept.
      assert.match(reason, /fake refusal/);
      assert.ok(log.lines.some((l) => l.level === 'error' && /rejected\//.test(l.msg)));

      fake.mode = 'accept';
      await ilp.write(batch(1));
      await ilp.writer.flush();
      assert.deepEqual(
        flowIds(fake.rows),
        [2, 3].map((n) => n.toString(16).padStart(16, '0')),
      );
    } finally {
      await ilp.writer.close();
      await fake.close();
    }
  });

  test('write() waits when too much is in flight (back-pressure)', async () => {
    const fake = await startFakeQuestDb();
    const ilp = await createIlpWriter({
      ilp: conf(fake.port, 'auto_flush_rows=1;'),
      spoolDir: join(dir, 'pressure'),
      maxInFlightBytes: 2048,
      log: captureLog(),
    });
    ilp.writer.start();
    try {
      let maxInFlight = 0;
      for (let i = 0; i < 30; i++) {
        await ilp.write(batch(i));
        maxInFlight = Math.max(maxInFlight, ilp.writer.state().inFlightBytes);
      }
      const oneBatch = 3000; // generous upper bound on one serialised batch
      assert.ok(maxInFlight <= 2048 + oneBatch, `in flight ${maxInFlight} exceeds the bound`);
      await ilp.writer.flush();
      assert.equal(flowIds(fake.rows).length, 60);
    } finally {
      await ilp.writer.close();
      await fake.close();
    }
  });

  test('ILP rows carry the right tables, symbols, field types and timestamps', async () => {
    const fake = await startFakeQuestDb();
    const ilp = await createIlpWriter({ ilp: conf(fake.port), spoolDir: join(dir, 'content'), log: captureLog() });
    ilp.writer.start();
    try {
      const f = flow(7, { serverName: 'a "quoted", name=x \\ y', iface: '', app: '', tcpState: '', node: 'node a,b' });
      await ilp.write({ flows: [f], hosts: [host(1)], traffic: [traffic(1)], anomalies: [anomaly(1)] });
      await ilp.writer.flush();
      assert.deepEqual(
        fake.rows.map((r) => r.table),
        ['flows', 'hosts', 'traffic', 'anomalies'],
      );
      const [fr, hr, tr, ar] = fake.rows as [IlpRow, IlpRow, IlpRow, IlpRow];

      assert.equal(fr.at, f.ts * 1000, 'designated timestamp in ns');
      assert.deepEqual(fr.columns.node, { type: 'symbol', value: 'node a,b' });
      assert.deepEqual(fr.columns.transport, { type: 'symbol', value: 'tcp' });
      assert.equal(fr.columns.iface, undefined, 'empty symbols are omitted (NULL)');
      assert.equal(fr.columns.app, undefined);
      assert.equal(fr.columns.tcp_state, undefined);
      assert.deepEqual(fr.columns.server_name, { type: 'string', value: f.serverName });
      assert.deepEqual(fr.columns.confidence, { type: 'symbol', value: 'dpi' });
      assert.deepEqual(fr.columns.first_packets, { type: 'string', value: f.firstPackets });
      assert.deepEqual(fr.columns.app_info, { type: 'string', value: f.appInfo });
      assert.deepEqual(fr.columns.flow_id, { type: 'string', value: f.flowId });
      assert.deepEqual(fr.columns.first_seen, { type: 'timestamp', value: f.firstSeen });
      assert.deepEqual(fr.columns.last_seen, { type: 'timestamp', value: f.lastSeen });
      assert.deepEqual(fr.columns.client_bytes, { type: 'int', value: f.clientBytes });
      assert.deepEqual(fr.columns.client_tcp_flags, { type: 'int', value: 0x1b });
      assert.deepEqual(fr.columns.final, { type: 'bool', value: false });
      assert.deepEqual(fr.columns.client_ip, { type: 'string', value: '10.0.0.1' });
      assert.deepEqual(fr.columns.server_ip, { type: 'string', value: '2001:db8::1' });

      assert.equal(hr.at, host(1).ts * 1000);
      assert.deepEqual(hr.columns.ip, { type: 'string', value: '10.0.0.1' });
      assert.deepEqual(hr.columns.peers, { type: 'int', value: 1 });
      assert.deepEqual(tr.columns.bytes, { type: 'int', value: 300 });
      assert.equal(ar.at, T0 * 1000, 'anomaly ts = startedAt');
      assert.deepEqual(ar.columns.kind, { type: 'symbol', value: 'PORT_SCAN' });
      assert.deepEqual(ar.columns.evidence, { type: 'string', value: '{"ports":120}' });
      assert.deepEqual(ar.columns.started_at, { type: 'timestamp', value: T0 });
    } finally {
      await ilp.writer.close();
      await fake.close();
    }
  });

  test("sends the configuration string's credentials, and rides out a brief 503 without spooling", async () => {
    const fake = await startFakeQuestDb();
    const log = captureLog();
    // retry_timeout long enough to outlast the refusal below: the transport retries, as the client does.
    const basic = await createIlpWriter({
      ilp: conf(fake.port, 'username=writer;password=s3;;cret;').replace('retry_timeout=200', 'retry_timeout=3000'),
      spoolDir: join(dir, 'basic'),
      log,
    });
    const bearer = await createIlpWriter({ ilp: conf(fake.port, 'token=tok-123;'), spoolDir: join(dir, 'bearer'), log });
    basic.writer.start();
    bearer.writer.start();
    try {
      fake.mode = 'refuse';
      setTimeout(() => (fake.mode = 'accept'), 150);
      await basic.write(batch(0));
      await basic.writer.flush();
      assert.deepEqual(basic.writer.state().spool, { batches: 0, bytes: 0 }, 'a 503 within retry_timeout is retried, not spooled');
      assert.ok(
        fake.requests.some((r) => r.status === 503),
        'the server did refuse at first',
      );
      await bearer.write(batch(1));
      await bearer.writer.flush();
      assert.deepEqual(
        flowIds(fake.rows),
        [0, 1, 2, 3].map((n) => n.toString(16).padStart(16, '0')),
      );
      const auth = new Set(fake.requests.filter((r) => r.status === 204).map((r) => r.authorization));
      assert.deepEqual([...auth].sort(), [`Basic ${Buffer.from('writer:s3;cret').toString('base64')}`, 'Bearer tok-123'].sort());
    } finally {
      await basic.close();
      await bearer.close();
      await fake.close();
    }
  });

  test('refuses ILP/TCP, which acknowledges nothing', async () => {
    await assert.rejects(createIlpWriter({ ilp: 'tcp::addr=127.0.0.1:9009;', spoolDir: join(dir, 'tcp'), log: captureLog() }), /http/);
  });
});

// ---------------------------------------------------------------------------------------------

/** Column name → type for each CREATE TABLE in schema/questdb.sql. */
async function schemaColumns(): Promise<{ statements: string[]; tables: Map<string, Map<string, string>> }> {
  const statements = parseSchemaSql(await readFile(SCHEMA_URL, 'utf8'));
  const tables = new Map<string, Map<string, string>>();
  for (const s of statements) {
    const m = /^CREATE TABLE IF NOT EXISTS (\w+) \(([\s\S]*)\) TIMESTAMP\(ts\) PARTITION BY DAY WAL\s+DEDUP UPSERT KEYS\(([^)]*)\)$/.exec(s);
    if (!m) continue;
    const cols = new Map<string, string>();
    for (const def of m[2]!.split(',')) {
      const [name, type] = def.trim().split(/\s+/);
      cols.set(name!, type!);
    }
    for (const key of m[3]!.split(',')) assert.ok(cols.has(key.trim()), `dedup key ${key} of ${m[1]} is a column`);
    tables.set(m[1]!, cols);
  }
  return { statements, tables };
}

const snake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

describe('schema/questdb.sql', () => {
  test('creates the four tables, idempotently, each with ts, day partitions, WAL and dedup keys', async () => {
    const { statements, tables } = await schemaColumns();
    assert.deepEqual([...tables.keys()].sort(), ['anomalies', 'flows', 'hosts', 'traffic']);
    for (const s of statements) {
      assert.match(s, /^(CREATE TABLE IF NOT EXISTS|ALTER TABLE \w+ (DEDUP ENABLE UPSERT KEYS|ADD COLUMN IF NOT EXISTS))/, `not idempotent: ${s}`);
    }
    for (const [name, cols] of tables) assert.equal(cols.get('ts'), 'TIMESTAMP', `${name}.ts`);
    const keys = statements.filter((s) => s.startsWith('CREATE')).map((s) => /DEDUP UPSERT KEYS\(([^)]*)\)/.exec(s)![1]);
    assert.deepEqual(keys, ['ts, flow_id', 'ts, node, ip, source', 'ts, node, source', 'ts, anomaly_id']);
  });

  test('every record field has a column, and the writer sends each with a matching type', async () => {
    const { tables } = await schemaColumns();
    // ILP leaves empty strings and symbols out: every text column gets a value (a run's source,
    // an enumerated column's first value).
    const filled = <R>(def: AnyRecordDef, r: R): R => {
      const out = { ...r } as Record<string, unknown>;
      for (const c of def.list) if (c.type === 'str' && out[c.field] === '') out[c.field] = c.field === 'source' ? 'run1' : String(c.values?.[0] ?? 'x');
      return out as R;
    };
    const sample = {
      flows: [filled(FLOW, flow(1))],
      hosts: [filled(HOST, host(1))],
      traffic: [filled(TRAFFIC, traffic(1))],
      anomalies: [filled(ANOMALY, anomaly(1))],
    };
    for (const [table, records] of Object.entries(sample)) {
      const cols = tables.get(table)!;
      for (const field of Object.keys(records[0]!)) assert.ok(cols.has(snake(field)), `${table} has no column for ${field}`);
    }

    // Serialise with the same code the writer uses, then compare ILP types with the DDL.
    const sentText = Buffer.concat(ilpBodies(sample).map((b) => b.body)).toString('utf8');
    const compatible: Record<IlpValue['type'], string[]> = {
      symbol: ['SYMBOL'],
      string: ['VARCHAR'],
      int: ['LONG', 'INT', 'SHORT'],
      timestamp: ['TIMESTAMP'],
      bool: ['BOOLEAN'],
    };
    const sent = new Map<string, Set<string>>();
    for (const row of parseIlp(sentText)) {
      const cols = tables.get(row.table);
      assert.ok(cols, `writer sends to unknown table ${row.table}`);
      const names = sent.get(row.table) ?? new Set(['ts']);
      for (const [name, v] of Object.entries(row.columns)) {
        const type = cols.get(name);
        assert.ok(type, `${row.table}.${name} is sent but has no column`);
        assert.ok(compatible[v.type].includes(type), `${row.table}.${name}: ILP ${v.type} into ${type}`);
        names.add(name);
      }
      sent.set(row.table, names);
    }
    for (const [table, cols] of tables) assert.deepEqual([...cols.keys()].sort(), [...(sent.get(table) ?? [])].sort(), `${table}: every column is written`);
  });

  test('SAMPLE BY strides and timestamp parameters are built from numbers only', () => {
    assert.equal(sampleByStride(60_000_000), '1m');
    assert.equal(sampleByStride(3_600_000_000), '1h');
    assert.equal(sampleByStride(90_000_000), '90s');
    assert.equal(sampleByStride(86_400_000_000 * 2), '2d');
    assert.equal(sampleByStride(1500), '1500U');
    assert.throws(() => sampleByStride(0));
    assert.throws(() => sampleByStride(1.5));
    assert.equal(isoMicros(T0 + 123), '2023-11-14T22:13:20.000123Z');
    assert.equal(isoMicros(0), '1970-01-01T00:00:00.000000Z');
  });
});
