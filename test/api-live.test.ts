/**
 * The server with a token: authentication over HTTP and WebSocket, imports through the server
 * (multipart upload, `flowlens import --server`), and live subscriptions (graphql-ws and SSE)
 * that see the uploaded capture's flows as the server imports it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createClient, type Client } from 'graphql-ws';
import { pino } from 'pino';
import WebSocket from 'ws';
import { MemoryBus } from '../src/bus/memory.js';
import { importThroughServer } from '../src/api/client.js';
import { startApiServer } from '../src/api/server.js';
import type { FlowStore } from '../src/store/types.js';
import { gql, gqlData, isoAt, sampleCapture, sseSubscribe, startTestServer, waitFor, type TestServer } from './api-helpers.js';
import { runCli } from './helpers/cli.js';

const TOKEN = 's3cret-token';
const RANGE = { from: isoAt(0), to: isoAt(300) };

function wsClient(url: string, connectionParams: Record<string, unknown>, closed: (code: number, reason: string) => void): Client {
  return createClient({
    url: url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams,
    lazy: false,
    retryAttempts: 0,
    on: { closed: (e) => closed((e as { code: number }).code, String((e as { reason?: string }).reason ?? '')) },
    onNonLazyError: () => {},
  });
}

describe('GraphQL API: token, uploads and subscriptions', () => {
  let t: TestServer;

  before(async () => {
    t = await startTestServer({ token: TOKEN });
  });
  after(() => t?.stop());

  it('requires the bearer token on /graphql and /metrics, not on /health', async () => {
    const q = `{ captureStatus { store { ok } } }`;
    const none = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: q }) });
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.match(((await none.json()) as any).errors[0].message, /bearer token/);
    assert.equal((await gql(t.url, q, {}, 'wrong')).status, 401);
    assert.deepEqual(await gqlData(t.url, q, {}, TOKEN), { captureStatus: { store: { ok: true } } });

    const base = t.url.replace(/\/graphql$/, '');
    assert.equal((await fetch(`${base}/metrics`)).status, 401);
    assert.equal((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
    assert.equal((await fetch(`${base}/health`)).status, 200);
  });

  it('answers cross-origin requests only from the origins given with --cors-origin (none by default)', async () => {
    const preflight = (url: string, origin: string) =>
      fetch(url, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' },
      });
    // This server was started without corsOrigins: no origin is allowed.
    assert.equal((await preflight(t.url, 'http://console.test')).headers.get('access-control-allow-origin'), null);
    const cors = await startTestServer({ corsOrigins: ['http://console.test'] });
    try {
      const ok = await preflight(cors.url, 'http://console.test');
      assert.equal(ok.headers.get('access-control-allow-origin'), 'http://console.test');
      assert.match(ok.headers.get('access-control-allow-headers') ?? '', /authorization/);
      const other = await preflight(cors.url, 'http://elsewhere.test');
      assert.notEqual(other.headers.get('access-control-allow-origin'), 'http://elsewhere.test');
      assert.notEqual(other.headers.get('access-control-allow-origin'), '*');
    } finally {
      await cors.stop();
    }
  });

  it('refuses a WebSocket connection without the token in connection_init (4403)', async () => {
    const closeCode = (payload: Record<string, unknown>) =>
      new Promise<number>((resolve, reject) => {
        const socket = new WebSocket(t.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
        socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload })));
        socket.on('message', (m) => reject(new Error(`unexpected message ${m}`)));
        socket.on('close', (code) => resolve(code));
        socket.on('error', reject);
      });
    assert.equal(await closeCode({}), 4403, 'no token');
    assert.equal(await closeCode({ token: 'wrong' }), 4403, 'wrong token');
    assert.equal(await closeCode({ Authorization: 'Bearer wrong' }), 4403, 'wrong bearer');
  });

  it('streams flow updates over graphql-ws and SSE while an upload is imported, then serves the imported flows', async () => {
    const sample = sampleCapture(join(t.dir, 'live.pcap'), 5);
    const host = '10.5.0.1';
    const expected = sample.flows.filter((f) => f.clientIp === host || f.serverIp === host);
    const sub = `subscription($filter: FlowFilter) { flowUpdates(filter: $filter) { type flow { id clientIp serverIp clientBytes serverBytes clientPackets serverPackets } } }`;

    const wsEvents: any[] = [];
    let wsError: unknown;
    const ws = wsClient(t.url, { token: TOKEN }, () => {});
    const unsubscribe = ws.subscribe(
      { query: sub, variables: { filter: { host } } },
      { next: (v) => wsEvents.push(v.data), error: (e) => (wsError = e), complete: () => {} },
    );
    const sse = sseSubscribe(t.url, sub, { filter: { host } }, TOKEN);
    const progress = sseSubscribe(t.url, `subscription { importProgress { id state packets summary { flows } } }`, {}, TOKEN);
    try {
      await sse.ready;
      await progress.ready;
      await waitFor(() => t.server.metrics.value('flowlens_subscriptions_active', { field: 'flowUpdates' }) === 2, 'both flowUpdates subscriptions');
      await waitFor(() => t.server.metrics.value('flowlens_subscriptions_active', { field: 'importProgress' }) === 1, 'importProgress subscription');

      const summary = await importThroughServer([sample.path], { server: t.url, token: TOKEN });
      assert.equal(summary.flows, 16);
      assert.equal(summary.packets, sample.frames.length);
      assert.equal(summary.files[0].path, sample.path, 'the summary names the file given');
      assert.equal(summary.files[0].format, 'pcap');

      // Every flow of the host ends, with the capture's counts; nothing about other hosts.
      for (const [name, events] of [
        ['graphql-ws', wsEvents],
        ['SSE', sse.events],
      ] as const) {
        await waitFor(
          () => new Set(events.filter((e) => e.flowUpdates.type === 'END').map((e) => e.flowUpdates.flow.id)).size === expected.length,
          `${name}: END of ${expected.length} flows`,
        );
        assert.ok(
          events.every((e) => e.flowUpdates.flow.clientIp === host || e.flowUpdates.flow.serverIp === host),
          `${name}: filter applied`,
        );
        for (const want of expected) {
          const end = events.find(
            (e) =>
              e.flowUpdates.type === 'END' &&
              e.flowUpdates.flow.clientIp === want.clientIp &&
              e.flowUpdates.flow.serverIp === want.serverIp &&
              e.flowUpdates.flow.serverBytes === want.serverBytes,
          );
          assert.ok(end, `${name}: END of ${want.clientIp} -> ${want.serverIp} with ${want.serverBytes} server bytes`);
          assert.equal(end.flowUpdates.flow.clientPackets, want.clientPackets);
        }
        // Coalesced: the import publishes start and end for each flow within one tick.
        assert.ok(events.length <= expected.length * 2, `${name}: ${events.length} events for ${expected.length} flows`);
      }
      assert.equal(wsError, undefined);

      await waitFor(() => progress.events.some((e) => e.importProgress.state === 'DONE'), 'importProgress DONE');
      const states = progress.events.map((e) => e.importProgress.state);
      assert.ok(states.includes('RUNNING'), states.join(','));
      assert.equal(progress.events.at(-1).importProgress.summary.flows, 16);

      // The import went into the server's store.
      const d = await gqlData(
        t.url,
        `query($from: DateTime, $to: DateTime) { flows(from: $from, to: $to, filter: { host: "${host}" }) { totalCount edges { node { iface } } } captureStatus { packets imports { id } } }`,
        RANGE,
        TOKEN,
      );
      assert.equal(d.flows.totalCount, expected.length);
      assert.equal(d.flows.edges[0].node.iface, 'live.pcap', 'records name the uploaded file');
      assert.equal(d.captureStatus.packets, sample.frames.length);
      assert.deepEqual(d.captureStatus.imports, [], 'no import in progress any more');
      assert.equal(t.server.metrics.value('flowlens_import_packets_total'), sample.frames.length);
    } finally {
      unsubscribe();
      await ws.dispose();
      sse.close();
      progress.close();
    }
    await waitFor(() => t.server.metrics.value('flowlens_subscriptions_active', { field: 'flowUpdates' }) === 0, 'subscriptions closed on the server');
  });

  it('imports through `flowlens import FILE --server URL --token T`, and refuses without the token', async () => {
    const sample = sampleCapture(join(t.dir, 'cli.pcap'), 6);
    const ok = await runCli(['import', sample.path, '--server', t.url, '--token', TOKEN, '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    const summary = JSON.parse(ok.stdout);
    assert.equal(summary.flows, 16);
    assert.equal(summary.files[0].path, sample.path);

    const text = await runCli(['import', sample.path, '--server', t.url.replace(/^http:\/\//, '').replace(/\/graphql$/, ''), '--token', TOKEN]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^imported 1 file in/m);
    assert.match(text.stdout, /^ {2}flows {6}16$/m);

    const refused = await runCli(['import', sample.path, '--server', t.url]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refused the token/);
  });

  it('reports a file that is not a capture as a failed import, and refuses uploads without the upload header', async () => {
    const junk = join(t.dir, 'junk.pcap');
    writeFileSync(junk, 'this is not a capture file at all, just text');
    const r = await runCli(['import', junk, '--server', t.url, '--token', TOKEN]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /junk\.pcap: .+/);

    const form = new FormData();
    form.append('operations', JSON.stringify({ query: 'mutation($f: File!) { importCapture(file: $f) { id } }', variables: { f: null } }));
    form.append('map', JSON.stringify({ 0: ['variables.f'] }));
    form.append('0', new Blob(['x']), 'x.pcap');
    const res = await fetch(t.url, { method: 'POST', body: form, headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as any).errors[0].message, /x-flowlens-upload/);
  });
});

describe('GraphQL API: start-up', () => {
  it('refuses to listen beyond loopback without a token, and warns loudly when told to', async () => {
    let logs = '';
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logs += chunk;
        cb();
      },
    });
    await assert.rejects(
      startApiServer({ store: {} as FlowStore, bus: new MemoryBus(), logger: pino({ level: 'info' }, sink), host: '0.0.0.0', port: 0 }),
      /refusing to listen on 0\.0\.0\.0 without a token.*--insecure-no-token/,
    );
    const server = await startApiServer({
      store: {} as FlowStore,
      bus: new MemoryBus(),
      logger: pino({ level: 'info' }, sink),
      host: '0.0.0.0',
      port: 0,
      insecureNoToken: true,
    });
    await server.close();
    assert.match(logs, /WITHOUT a token/);

    logs = '';
    const quiet = await startApiServer({
      store: {} as FlowStore,
      bus: new MemoryBus(),
      logger: pino({ level: 'info' }, sink),
      host: '0.0.0.0',
      port: 0,
      token: TOKEN,
    });
    await quiet.close();
    assert.doesNotMatch(logs, /WITHOUT a token/);
  });
});
