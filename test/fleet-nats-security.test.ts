// @runs-alone (test/run.ts): a live capture on lo and timed reconnections
/**
 * The fleet bus's security.
 * - The validator: every topic's record with good and bad payloads (types, enums, ranges, node).
 * - The bus flags: conflicts, missing files, seeds that are not seeds (no server needed).
 * - Against a real nats-server configured as the README says (test/helpers/secure-nats.ts): TLS
 *   with client certificates, node-a/node-b (passwords) and node-c (NKey) each allowed to publish
 *   under their own subject only, `api` alone allowed to subscribe. Real NatsBus instances and the
 *   real CLI (`flowlens serve --bus` with the flags).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { connect, nkeys } from 'nats';
import { pino } from 'pino';
import { startApiServer } from '../src/api/server.js';
import { NatsBus, type NatsBusOptions } from '../src/bus/nats.js';
import type { FlowStore } from '../src/store/types.js';
import { connectSecurity } from '../src/bus/security.js';
import type { AnomalyEvent, FlowEvent, TrafficEvent } from '../src/bus/types.js';
import { validateBusEvent, type BusTopic } from '../src/bus/validate.js';
import { ANOMALY, type ColumnInfo, EMPTY_VALUE, FLOW, TRAFFIC } from '../src/records/index.js';
import { busSettingsFrom } from '../src/cli/bus-options.js';
import { REPO_ROOT, runCli, CLI_ARGV } from './helpers/cli.js';
import { anomalyEvent, flowEvent, memoryLogger, statusEvent, trafficEvent, until } from './helpers/bus-events.js';
import { collect, sleep, waitForOutput } from './helpers/netns.js';
import { NATS_SERVER, OPENSSL, startSecureNats, type SecureNats } from './helpers/secure-nats.js';

describe('validateBusEvent', () => {
  const json = (v: unknown) => JSON.stringify(v);
  const mutate = <T>(v: T, f: (c: any) => void): string => {
    const c = structuredClone(v) as any;
    f(c);
    return json(c);
  };

  test('accepts each topic’s record from the node of its subject (extra fields kept)', () => {
    const good: [BusTopic, unknown][] = [
      ['flow', flowEvent('edge.1')],
      ['flow', { ...flowEvent('edge.1'), flow: { ...flowEvent('edge.1').flow, ts: 5, final: false } }],
      ['traffic', trafficEvent('edge.1')],
      ['anomaly', anomalyEvent('edge.1')],
      ['status', statusEvent('edge.1')],
      ['status', { node: 'edge.1', ts: 1, interfaces: [] }],
    ];
    for (const [topic, e] of good) {
      const v = validateBusEvent(topic, 'edge_1', json(e));
      assert.ok(v.ok, `${topic}: ${JSON.stringify(v)}`);
      assert.deepEqual(v.event, e);
    }
  });

  test('drops what is not the record its subject claims, by reason', () => {
    const flow = flowEvent('node-a');
    const cases: [string, BusTopic, string, string][] = [
      ['not JSON', 'flow', '{"type":', 'not-json'],
      ['a JSON string', 'flow', '"hello"', 'invalid-record'],
      ['null', 'traffic', 'null', 'invalid-record'],
      ['an array', 'status', '[]', 'invalid-record'],
      ['a traffic event on the flow subject', 'flow', json(trafficEvent('node-a')), 'invalid-record'],
      ['a flow event on the anomaly subject', 'anomaly', json(flow), 'invalid-record'],
      ['flow: unknown type', 'flow', mutate(flow, (c) => (c.type = 'restart')), 'invalid-record'],
      ['flow: no flow', 'flow', json({ type: 'end' }), 'invalid-record'],
      ['flow: bytes as a string', 'flow', mutate(flow, (c) => (c.flow.clientBytes = '60')), 'invalid-record'],
      ['flow: negative packets', 'flow', mutate(flow, (c) => (c.flow.serverPackets = -1)), 'invalid-record'],
      ['flow: port 70000', 'flow', mutate(flow, (c) => (c.flow.serverPort = 70000)), 'invalid-record'],
      ['flow: fractional port', 'flow', mutate(flow, (c) => (c.flow.clientPort = 80.5)), 'invalid-record'],
      ['flow: client IP not an IP', 'flow', mutate(flow, (c) => (c.flow.clientIp = '<script>')), 'invalid-record'],
      ['flow: missing serverIp', 'flow', mutate(flow, (c) => delete c.flow.serverIp), 'invalid-record'],
      ['flow: unknown tcpState', 'flow', mutate(flow, (c) => (c.flow.tcpState = 'open')), 'invalid-record'],
      ['flow: appInfo as a number', 'flow', mutate(flow, (c) => (c.flow.appInfo = 7)), 'invalid-record'],
      ['flow: endReason not one of END_REASONS', 'flow', mutate(flow, (c) => (c.flow.endReason = 'timeout')), 'invalid-record'],
      ['flow: duration as a string', 'flow', mutate(flow, (c) => (c.flow.duration = '1000')), 'invalid-record'],
      ['flow: fractional lastSeen', 'flow', mutate(flow, (c) => (c.flow.lastSeen = 2.5)), 'invalid-record'],
      ['flow: ipProto 256', 'flow', mutate(flow, (c) => (c.flow.ipProto = 256)), 'invalid-record'],
      ['flow: node missing', 'flow', mutate(flow, (c) => delete c.flow.node), 'invalid-record'],
      ['flow: another node’s', 'flow', json(flowEvent('node-b')), 'node-mismatch'],
      ['traffic: step 0', 'traffic', mutate(trafficEvent('node-a'), (c) => (c.step = 0)), 'invalid-record'],
      ['traffic: NaN-ish bytes', 'traffic', mutate(trafficEvent('node-a'), (c) => (c.point.bytes = null)), 'invalid-record'],
      ['traffic: another node’s', 'traffic', json(trafficEvent('node-b')), 'node-mismatch'],
      ['anomaly: unknown kind', 'anomaly', mutate(anomalyEvent('node-a'), (c) => (c.anomaly.kind = 'DDOS')), 'invalid-record'],
      ['anomaly: unknown severity', 'anomaly', mutate(anomalyEvent('node-a'), (c) => (c.anomaly.severity = 'extreme')), 'invalid-record'],
      ['anomaly: summary a number', 'anomaly', mutate(anomalyEvent('node-a'), (c) => (c.anomaly.summary = 1)), 'invalid-record'],
      ['anomaly: another node’s', 'anomaly', json(anomalyEvent('node-b')), 'node-mismatch'],
      ['status: interfaces not an array', 'status', mutate(statusEvent('node-a'), (c) => (c.interfaces = {})), 'invalid-record'],
      ['status: packets a string', 'status', mutate(statusEvent('node-a'), (c) => (c.interfaces[0].packets = '1')), 'invalid-record'],
      ['status: another node’s', 'status', json(statusEvent('node-b')), 'node-mismatch'],
      ['status: another node’s interface', 'status', mutate(statusEvent('node-a'), (c) => (c.interfaces[0].node = 'node-b')), 'node-mismatch'],
    ];
    const wrong: string[] = [];
    for (const [label, topic, text, reason] of cases) {
      const v = validateBusEvent(topic, 'node-a', text);
      if (v.ok || v.reason !== reason) wrong.push(`${label}: ${JSON.stringify(v)}`);
    }
    assert.deepEqual(wrong, []);
  });

  test("checks every field of the record's definition: without any one of them, or with a value of another type, the event is dropped", () => {
    const events: [BusTopic, unknown, string, readonly ColumnInfo[]][] = [
      ['flow', flowEvent('node-a'), 'flow', FLOW.summary],
      ['anomaly', anomalyEvent('node-a'), 'anomaly', ANOMALY.list],
      ['traffic', trafficEvent('node-a'), 'point', TRAFFIC.list.filter((c) => c.type === 'time' || c.type === 'counter')],
    ];
    const wrong: string[] = [];
    for (const [topic, event, key, columns] of events) {
      assert.ok(columns.length > 3, topic);
      for (const { field, added } of columns) {
        // A column added to the record since the first release may be missing: see the next test.
        for (const [how, change] of [
          ...(added ? [] : [['missing', (r: any) => delete r[field]] as const]),
          ['an object', (r: any) => (r[field] = {})] as const,
        ]) {
          const v = validateBusEvent(
            topic,
            'node-a',
            mutate(event, (c) => change(c[key])),
          );
          if (v.ok || v.reason !== 'invalid-record') wrong.push(`${topic}.${field} ${how}: ${JSON.stringify(v)}`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  });

  test('an event of a node of an earlier version, without the columns added since, is taken with their empty values (as old rows get them)', () => {
    const events: [BusTopic, unknown, string, readonly ColumnInfo[]][] = [
      ['flow', flowEvent('node-a'), 'flow', FLOW.summary],
      ['anomaly', anomalyEvent('node-a'), 'anomaly', ANOMALY.list],
    ];
    for (const [topic, event, key, columns] of events) {
      const added = columns.filter((c) => c.added);
      assert.ok(added.length > 0, `${topic} has added columns`);
      const v = validateBusEvent(
        topic,
        'node-a',
        mutate(event, (c) => {
          for (const col of added) delete c[key][col.field];
        }),
      );
      assert.ok(v.ok, `${topic} without ${added.map((c) => c.field).join(', ')}: ${JSON.stringify(v)}`);
      const record = (v.event as unknown as Record<string, Record<string, unknown>>)[key];
      for (const col of added) assert.equal(record[col.field], EMPTY_VALUE[col.type], `${topic}.${col.field}`);
    }
  });
});

describe('bus flags', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-busopts-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('settings from the flags, and the connect() options they make', () => {
    const seed = new TextDecoder().decode(nkeys.createUser().getSeed());
    const seedFile = join(dir, 'user.nk');
    writeFileSync(seedFile, `${seed}\n`);
    assert.equal(busSettingsFrom({}), undefined);
    assert.deepEqual(busSettingsFrom({ bus: 'nats://h:4222' }), { url: 'nats://h:4222', auth: undefined, tls: undefined });
    const up = busSettingsFrom({ bus: 'nats://h:4222', busUser: 'u', busPassword: 'p', busTlsCa: '/ca.pem', busTlsCert: '/c.pem', busTlsKey: '/k.pem' })!;
    assert.deepEqual(up, { url: 'nats://h:4222', auth: { user: 'u', pass: 'p' }, tls: { caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' } });
    assert.deepEqual(connectSecurity(up.url, up), { user: 'u', pass: 'p', tls: { caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' } });
    assert.deepEqual(connectSecurity('nats://h', { auth: { token: 't' } }), { token: 't' });
    assert.deepEqual(busSettingsFrom({ bus: 'tls://h:4222' })!.tls, {}, 'a tls:// URL requires TLS');
    assert.deepEqual(connectSecurity('nats://a,tls://b', {}), { tls: {} });
    assert.deepEqual(busSettingsFrom({ bus: 'nats://h', busTls: true })!.tls, {});
    const nk = busSettingsFrom({ bus: 'nats://h', busNkeySeedFile: seedFile })!;
    assert.equal(new TextDecoder().decode((nk.auth as { nkeySeed: Uint8Array }).nkeySeed), seed);
    assert.equal(typeof connectSecurity('nats://h', nk).authenticator, 'function');
    // A .creds file as nsc writes it: the user JWT, then the seed.
    const credsFile = join(dir, 'user.creds');
    const creds = `-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.sig\n------END NATS USER JWT------\n\n************************* IMPORTANT *************************\nNKEY Seed printed below can be used to sign and prove identity.\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`;
    writeFileSync(credsFile, creds);
    const cr = busSettingsFrom({ bus: 'nats://h', busCreds: credsFile })!;
    assert.equal(new TextDecoder().decode((cr.auth as { creds: Uint8Array }).creds), creds);
    assert.equal(typeof connectSecurity('nats://h', cr).authenticator, 'function');
  });

  test('settings that cannot work are errors naming the flag', () => {
    const notSeed = join(dir, 'not-a-seed');
    writeFileSync(notSeed, 'hello\n');
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ busUser: 'u', busPassword: 'p' }, /--bus-user needs --bus/],
      [{ bus: 'nats://h', busUser: 'u' }, /--bus-user needs --bus-password/],
      [{ bus: 'nats://h', busPassword: 'p' }, /--bus-password needs --bus-user/],
      [{ bus: 'nats://h', busUser: 'u', busPassword: 'p', busToken: 't' }, /--bus-user and --bus-token .*give one/],
      [{ bus: 'nats://h', busToken: 't', busCreds: notSeed }, /--bus-token and --bus-creds/],
      [{ bus: 'nats://h', busTlsCert: '/c.pem' }, /--bus-tls-cert and --bus-tls-key go together/],
      [{ bus: 'nats://h', busNkeySeedFile: notSeed }, new RegExp(`--bus-nkey-seed-file ${notSeed}: not an NKey user seed`)],
      [{ bus: 'nats://h', busCreds: notSeed }, new RegExp(`--bus-creds ${notSeed}: not a NATS .creds file`)],
    ];
    for (const [o, re] of cases) assert.throws(() => busSettingsFrom(o), re, JSON.stringify(o));
  });

  test('the CLI: a missing file, conflicting credentials (exit 2, one line naming the flag)', async () => {
    const missing = join(dir, 'no-such-ca.pem');
    let r = await runCli(['serve', '--port', '0', '--db', join(dir, 'x.duckdb'), '--bus', 'nats://127.0.0.1:1', '--bus-tls-ca', missing]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`--bus-tls-ca <file>.*${missing}: no such file`));
    r = await runCli(['capture', '-i', 'lo', '--db', join(dir, 'x.duckdb'), '--bus', 'nats://127.0.0.1:1'], {
      env: { FLOWLENS_BUS_TOKEN: 't', FLOWLENS_BUS_NKEY_SEED_FILE: missing },
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`--bus-nkey-seed-file <file>.*${missing}.*FLOWLENS_BUS_NKEY_SEED_FILE|FLOWLENS_BUS_NKEY_SEED_FILE.*${missing}`));
    const seedFile = join(dir, 'ok.nk');
    writeFileSync(seedFile, new TextDecoder().decode(nkeys.createUser().getSeed()));
    r = await runCli(['capture', '-i', 'lo', '--db', join(dir, 'x.duckdb'), '--bus', 'nats://127.0.0.1:1', '--bus-nkey-seed-file', seedFile], {
      env: { FLOWLENS_BUS_TOKEN: 't' },
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--bus-token and --bus-nkey-seed-file are different ways to authenticate/);
    assert.ok(!existsSync(join(dir, 'x.duckdb')), 'no store was opened');
  });
});

const serverUnavailable = !NATS_SERVER ? 'needs nats-server' : !OPENSSL ? 'needs openssl' : null;
if (serverUnavailable) console.log(`# fleet-nats-security: server tests skipped: ${serverUnavailable}`);

describe('a nats-server configured as the README says', { skip: serverUnavailable ?? false }, () => {
  let dir: string;
  let nats: SecureNats;
  const buses: NatsBus[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-natssec-'));
    nats = await startSecureNats(dir);
  });
  after(async () => {
    await Promise.all(buses.map((b) => b.close()));
    nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A NatsBus with the CA and the client certificate; `who` picks the credentials. */
  function bus(node: string, who: 'node-a' | 'node-b' | 'node-c' | 'api' | 'none', extra: Partial<NatsBusOptions> = {}) {
    const log = memoryLogger();
    const auth: NatsBusOptions['auth'] =
      who === 'none'
        ? undefined
        : who === 'node-c'
          ? { nkeySeed: new TextEncoder().encode(readFileSync(nats.nodeCSeedFile, 'utf8').trim()) }
          : { user: who, pass: nats.passwords[who] };
    const b = new NatsBus({
      url: nats.url,
      node,
      logger: log.logger,
      auth,
      tls: { caFile: nats.pki.ca, certFile: nats.pki.clientCert, keyFile: nats.pki.clientKey },
      ...extra,
    });
    buses.push(b);
    return { bus: b, lines: log.lines };
  }

  /** True when the bus connects within `ms`. */
  async function connects(b: NatsBus, ms = 2500): Promise<boolean> {
    return Promise.race([b.whenConnected().then(() => true), sleep(ms).then(() => false)]);
  }

  test("node-a's events (flow, traffic, anomaly, status) reach the api; node-c's too, with an NKey", async () => {
    const api = bus('api', 'api');
    const flows: FlowEvent[] = [];
    const traffic: TrafficEvent[] = [];
    const anomalies: AnomalyEvent[] = [];
    api.bus.subscribe('flow', (e) => flows.push(e));
    api.bus.subscribe('traffic', (e) => traffic.push(e));
    api.bus.subscribe('anomaly', (e) => anomalies.push(e));
    const fleet = api.bus.fleetStatus();
    const a = bus('node-a', 'node-a');
    const c = bus('node-c', 'node-c');
    assert.ok(await connects(api.bus, 10_000), api.lines().join('\n'));
    assert.ok(await connects(a.bus, 10_000), a.lines().join('\n'));
    assert.ok(await connects(c.bus, 10_000), c.lines().join('\n'));
    await sleep(200);
    a.bus.publish('flow', flowEvent('node-a', 1));
    a.bus.publish('traffic', trafficEvent('node-a'));
    a.bus.publish('anomaly', anomalyEvent('node-a'));
    a.bus.publishStatus(statusEvent('node-a'));
    c.bus.publish('flow', flowEvent('node-c', 2));
    await until('events from node-a and node-c', () => flows.length >= 2 && traffic.length >= 1 && anomalies.length >= 1);
    assert.deepEqual(flows.map((f) => f.flow.node).sort(), ['node-a', 'node-c']);
    assert.deepEqual(traffic[0], trafficEvent('node-a'));
    assert.deepEqual(anomalies[0], anomalyEvent('node-a'));
    await until('node-a in the fleet status', () => fleet.workers().some((w) => w.node === 'node-a'));
    assert.deepEqual(fleet.interfaces(), statusEvent('node-a').interfaces);
    assert.deepEqual(a.bus.refusedPublishes(), {});
    assert.deepEqual(api.bus.droppedInvalid(), {});
  });

  test('node-a publishing as node-b is refused by the server, counted, logged once; the api gets none of it', async () => {
    const api = bus('api', 'api');
    const flows: FlowEvent[] = [];
    api.bus.subscribe('flow', (e) => flows.push(e));
    const impostor = bus('node-b', 'node-a');
    const honest = bus('node-a', 'node-a');
    await Promise.all([api.bus.whenConnected(), impostor.bus.whenConnected(), honest.bus.whenConnected()]);
    await sleep(200);
    for (let i = 0; i < 5; i++) impostor.bus.publish('flow', flowEvent('node-b', i));
    impostor.bus.publishStatus(statusEvent('node-b'));
    // node-a's own events, published after the impostor's, mark when the impostor's would have arrived.
    honest.bus.publish('flow', flowEvent('node-a', 99));
    await until('node-a’s marker event', () => flows.some((f) => f.flow.node === 'node-a'));
    await until('the refusals counted', () => (impostor.bus.refusedPublishes()['flowlens.node-b.flow'] ?? 0) >= 5);
    await sleep(300);
    assert.deepEqual(impostor.bus.refusedPublishes(), { 'flowlens.node-b.flow': 5, 'flowlens.node-b.status': 1 });
    assert.deepEqual(
      flows.map((f) => f.flow.node),
      ['node-a'],
      'nothing published as node-b reached the api',
    );
    const refusalLines = impostor.lines().filter((l) => /refused a publish/.test(l));
    assert.equal(refusalLines.length, 2, `one line per subject:\n${impostor.lines().join('\n')}`);
    assert.match(refusalLines[0], /flowlens\.node-b\.flow.*permissions violation/);
    assert.ok(await connects(impostor.bus, 100), 'the refused node stays connected');
  });

  test('a client without credentials is refused: one error line, however many retries', async () => {
    const anon = bus('node-a', 'none');
    assert.equal(await connects(anon.bus, 4000), false);
    const lines = anon.lines().filter((l) => /refused the credentials/.test(l));
    assert.equal(lines.length, 1, anon.lines().join('\n'));
    assert.match(lines[0], /"level":50/, 'an error');
    assert.match(lines[0], /Authorization Violation/i);
    const wrong = bus('node-a', 'node-a', { auth: { user: 'node-a', pass: 'wrong' } });
    assert.equal(await connects(wrong.bus, 2000), false);
    assert.equal(wrong.lines().filter((l) => /refused the credentials/.test(l)).length, 1);
  });

  test('TLS is required: a plain-TCP client is refused, and so are clients without our CA or a client certificate of it', async () => {
    // Plain TCP, credentials sent in the clear: the server announces TLS as required and answers
    // nothing but an error (no PONG, so no subscription either).
    const reply = await new Promise<string>((resolve) => {
      let text = '';
      const s = tcpConnect(nats.port, '127.0.0.1');
      s.setEncoding('utf8');
      s.on('data', (d: string) => {
        text += d;
        if (text.startsWith('INFO') && !text.includes('PING_SENT')) {
          text += 'PING_SENT\n';
          s.write(`CONNECT {"user":"api","pass":"${nats.passwords.api}","verbose":false,"tls_required":false}\r\nSUB flowlens.> 1\r\nPING\r\n`);
        }
      });
      s.on('close', () => resolve(text));
      s.on('error', () => {});
      setTimeout(() => s.destroy(), 3000).unref();
    });
    assert.match(reply, /"tls_required":true/);
    assert.doesNotMatch(reply, /PONG/);
    assert.doesNotMatch(reply, /\+OK/);

    const noCa = bus('api', 'api', { tls: { certFile: nats.pki.clientCert, keyFile: nats.pki.clientKey } });
    // Over TLS 1.3 the server refuses a client certificate after the client's handshake is done,
    // and the client only sees its connect timeout run out.
    const noCert = bus('api', 'api', { tls: { caFile: nats.pki.ca }, connectTimeoutMs: 1500 });
    const stranger = bus('api', 'api', {
      tls: { caFile: nats.pki.ca, certFile: nats.pki.strangerCert, keyFile: nats.pki.strangerKey },
      connectTimeoutMs: 1500,
    });
    for (const [label, c] of [
      ['no CA', noCa],
      ['no client certificate', noCert],
      ['a client certificate of another CA', stranger],
    ] as const) {
      assert.equal(await connects(c.bus, 4000), false, label);
      const errors = c.lines().filter((l) => /"level":50/.test(l));
      assert.equal(errors.length, 1, `${label}: one error line:\n${c.lines().join('\n')}`);
    }
    assert.match(noCa.lines().join('\n'), /TLS failed \(unable to verify/);
    assert.match(noCert.lines().join('\n'), /TLS failed \(.*client certificate/);
  });

  test('a node cannot subscribe to the fleet’s events', async () => {
    const snoop = bus('node-a', 'node-a');
    const got: FlowEvent[] = [];
    snoop.bus.subscribe('flow', (e) => got.push(e));
    const b = bus('node-b', 'node-b');
    await Promise.all([snoop.bus.whenConnected(), b.bus.whenConnected()]);
    await until('the refused subscription logged', () => snoop.lines().some((l) => /refused the subscription to flowlens\.\*\.flow/.test(l)));
    for (let i = 0; i < 3; i++) b.bus.publish('flow', flowEvent('node-b', i));
    // A raw client with node-a's credentials subscribing to everything is refused the same way.
    const nc = await connect({
      servers: nats.url,
      user: 'node-a',
      pass: nats.passwords['node-a'],
      tls: { caFile: nats.pki.ca, certFile: nats.pki.clientCert, keyFile: nats.pki.clientKey },
    });
    try {
      const refused = new Promise<string>((resolve) => nc.subscribe('flowlens.>', { callback: (err) => resolve(err ? err.code : 'a message') }));
      assert.equal(await refused, 'PERMISSIONS_VIOLATION');
    } finally {
      await nc.close();
    }
    await sleep(300);
    assert.deepEqual(got, []);
  });

  test('an invalid payload under a node’s own subject is dropped and counted by the api', async () => {
    const api = bus('api', 'api');
    const flows: FlowEvent[] = [];
    const traffic: TrafficEvent[] = [];
    api.bus.subscribe('flow', (e) => flows.push(e));
    api.bus.subscribe('traffic', (e) => traffic.push(e));
    const fleet = api.bus.fleetStatus();
    await api.bus.whenConnected();
    await sleep(200);
    const nc = await connect({
      servers: nats.url,
      user: 'node-a',
      pass: nats.passwords['node-a'],
      tls: { caFile: nats.pki.ca, certFile: nats.pki.clientCert, keyFile: nats.pki.clientKey },
    });
    const enc = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
    try {
      nc.publish('flowlens.node-a.flow', enc('not json {'));
      nc.publish('flowlens.node-a.flow', enc({ ...flowEvent('node-a'), flow: { ...flowEvent('node-a').flow, clientBytes: 'lots' } }));
      nc.publish('flowlens.node-a.traffic', enc(flowEvent('node-a')));
      nc.publish('flowlens.node-a.flow', enc(flowEvent('node-b')), {});
      nc.publish('flowlens.node-a.status', enc(statusEvent('node-b')));
      nc.publish('flowlens.node-a.flow', enc(flowEvent('node-a', 7)));
      await nc.flush();
    } finally {
      await nc.close();
    }
    await until('the valid event', () => flows.length === 1);
    await until('the invalid ones counted', () => api.bus.malformed === 5);
    assert.deepEqual(api.bus.droppedInvalid(), { 'not-json': 1, 'invalid-record': 2, 'node-mismatch': 2 });
    assert.equal(flows[0].flow.flowId, 'f7');
    assert.deepEqual(traffic, []);
    assert.deepEqual(fleet.workers(), [{ node: 'node-a', lastSeen: fleet.workers()[0]?.lastSeen }], 'the valid flow marks node-a as seen');
    assert.deepEqual(fleet.interfaces(), [], "node-b's interfaces in node-a's status were not taken");
    assert.equal(api.lines().filter((l) => /dropped an invalid event/.test(l)).length, 5, 'one line per subject and reason');
    // The API server over this bus shows the counts on /metrics.
    const server = await startApiServer({ store: {} as FlowStore, bus: api.bus, logger: pino({ level: 'silent' }), port: 0, webRoot: null });
    try {
      const text = await (await fetch(server.url.replace(/\/graphql$/, '/metrics'))).text();
      assert.match(text, /flowlens_bus_events_invalid_total\{reason="node-mismatch"\} 2/);
      assert.match(text, /flowlens_bus_events_invalid_total\{reason="not-json"\} 1/);
      assert.match(text, /# TYPE flowlens_bus_publishes_refused_total counter/);
    } finally {
      await server.close();
    }
  });

  test('the CLI: serve --bus with the credential and TLS flags takes the fleet’s status; wrong credentials are one error line', async () => {
    const env = {
      FLOWLENS_BUS_PASSWORD: nats.passwords.api,
      FLOWLENS_LOG_FORMAT: 'json',
    };
    const args = (user: string) => [
      ...CLI_ARGV,
      'serve',
      '--port',
      '0',
      '--db',
      join(dir, `serve-${user}.duckdb`),
      '--bus',
      nats.url,
      '--bus-user',
      user,
      '--bus-tls-ca',
      nats.pki.ca,
      '--bus-tls-cert',
      nats.pki.clientCert,
      '--bus-tls-key',
      nats.pki.clientKey,
    ];
    const spawnEnv = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLOWLENS_'))), ...env };
    const serve = spawn(process.execPath, args('api'), { cwd: REPO_ROOT, env: spawnEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    const serveOut = collect(serve);
    const bad = spawn(process.execPath, args('node-a'), { cwd: REPO_ROOT, env: spawnEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    const badOut = collect(bad);
    try {
      await waitForOutput(serve, /NATS connected[\s\S]*flowlens API at|flowlens API at[\s\S]*NATS connected/, 60_000);
      const url = /"url":"(http[^"]+)"/.exec(serveOut.stderr() + serveOut.stdout())![1];
      const node = bus('node-a', 'node-a');
      await node.bus.whenConnected();
      const query = async () => {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: '{ captureStatus { workers { node } interfaces { name node packets } } }' }),
        });
        return (await res.json()) as {
          data?: { captureStatus: { workers: { node: string }[]; interfaces: { name: string; node: string; packets: number }[] } };
        };
      };
      let status: Awaited<ReturnType<typeof query>> = {};
      const end = Date.now() + 15_000;
      while (!status.data?.captureStatus.workers.some((w) => w.node === 'node-a')) {
        assert.ok(Date.now() < end, `node-a never showed in serve's captureStatus: ${JSON.stringify(status)}\n${serveOut.stderr()}`);
        node.bus.publishStatus(statusEvent('node-a'));
        await sleep(200);
        status = await query();
      }
      assert.deepEqual(status.data!.captureStatus.interfaces, [{ name: 'eth0', node: 'node-a', packets: 10 }]);

      // The API server with node-a's user and the api's password: refused, said once.
      await until('the refusal', () => /refused the credentials/.test(badOut.stderr()), 60_000);
      await sleep(2500);
      const refusals = badOut
        .stderr()
        .split('\n')
        .filter((l) => /refused the credentials/.test(l));
      assert.equal(refusals.length, 1, badOut.stderr());
      assert.match(refusals[0], /--bus-user/);
      assert.doesNotMatch(badOut.stderr(), /NATS connected/);
    } finally {
      serve.kill('SIGINT');
      bad.kill('SIGINT');
      await Promise.all([serveOut.done, badOut.done]);
    }
  });
});
