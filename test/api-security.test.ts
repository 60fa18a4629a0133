// @runs-alone (test/run.ts): times out a query and checks it is cancelled in the store
/**
 * The API as an attacker and a careless user would try it: every route with no token, a wrong one
 * and the right one; paths that only look like /graphql; requests a browser can send cross-site
 * without a preflight; aliases, depth and introspection against the limits; oversized and
 * parallel uploads; many subscriptions; bad cursors; what the log keeps of a bad query.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { Writable } from 'node:stream';
import { createClient } from 'graphql-ws';
import { pino } from 'pino';
import WebSocket from 'ws';
import { UPLOAD_HEADER } from '../src/api/client.js';
import type { FlowStore, QueryOptions } from '../src/store/types.js';
import { gql, isoAt, sampleCapture, startTestServer, type TestServer } from './api-helpers.js';
import { runCli } from './helpers/cli.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../src/store/index.js';
import { LINKTYPE, toFrames, ts, udpExchange } from './helpers/frames.js';
import { pcap } from './helpers/pcap-writer.js';

const TOKEN = 'sekr1t';
const RANGE = { from: isoAt(0), to: isoAt(300) };

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request with the path sent byte for byte (fetch would normalise '//graphql' and the like). */
function raw(
  base: string,
  opts: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer | (() => AsyncIterable<Buffer>); timeoutMs?: number },
): Promise<RawResponse> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: u.hostname, port: u.port, method: opts.method ?? 'GET', path: opts.path, headers: opts.headers ?? {}, timeout: opts.timeoutMs ?? 20_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer to ${opts.method ?? 'GET'} ${opts.path}`)));
    req.on('error', (err) => {
      // A server that refuses an upload early may close the socket while the body is still sent.
      if ((err as NodeJS.ErrnoException).code === 'EPIPE' || (err as NodeJS.ErrnoException).code === 'ECONNRESET') {
        resolve({ status: -1, headers: {}, body: String(err) });
      } else reject(err);
    });
    const body = opts.body;
    if (typeof body === 'function') {
      void (async () => {
        try {
          for await (const chunk of body()) if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
          req.end();
        } catch {
          req.destroy();
        }
      })();
    } else req.end(body);
  });
}

const JSON_HEADERS = { 'content-type': 'application/json' };
const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const typename = JSON.stringify({ query: '{ __typename }' });

/** A multipart body per the GraphQL multipart request spec, importing one file. */
function multipart(file: Uint8Array, name = 'sample.pcap'): { body: Buffer; type: string } {
  const boundary = '----flowlens-test-boundary';
  const ops = JSON.stringify({ query: 'mutation($f: File!) { importCapture(file: $f) { state summary { flows } } }', variables: { f: null } });
  const parts = [
    `--${boundary}\r\ncontent-disposition: form-data; name="operations"\r\n\r\n${ops}\r\n`,
    `--${boundary}\r\ncontent-disposition: form-data; name="map"\r\n\r\n{"0":["variables.f"]}\r\n`,
    `--${boundary}\r\ncontent-disposition: form-data; name="0"; filename="${name}"\r\ncontent-type: application/vnd.tcpdump.pcap\r\n\r\n`,
  ];
  return {
    body: Buffer.concat([Buffer.from(parts.join('')), file, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    type: `multipart/form-data; boundary=${boundary}`,
  };
}

async function flowCount(t: TestServer): Promise<number> {
  const page = await t.store.queryFlows({ from: 0, to: Number.MAX_SAFE_INTEGER, first: 1 });
  return page.totalCount;
}

describe('API security: routes and the token', () => {
  let t: TestServer;
  let sample: Buffer;
  before(async () => {
    t = await startTestServer({ token: TOKEN, webRoot: null });
    const s = sampleCapture(join(t.dir, 'sample.pcap'));
    sample = readFileSync(s.path);
  });
  after(() => t.stop());

  it('answers GraphQL only on the exact path /graphql: look-alike paths are 404 with or without the token', async () => {
    const lookAlikes = [
      '/graphql/',
      '//graphql',
      '/x?y=/graphql',
      '/a.b?query=%7B__typename%7D&z=/graphql',
      '/GRAPHQL',
      '/graphql%2F',
      '/graphql;a',
      '/graphql/../graphql',
      '/./graphql',
    ];
    for (const path of lookAlikes) {
      for (const headers of [JSON_HEADERS, { ...JSON_HEADERS, ...auth(TOKEN) }]) {
        const post = await raw(t.url, { method: 'POST', path, headers, body: typename });
        assert.equal(post.status, 404, `POST ${path} (${Object.keys(headers).join(',')}): ${post.status} ${post.body}`);
        assert.doesNotMatch(post.body, /__typename|"data"/, `POST ${path} leaked data`);
      }
      const get = await raw(t.url, { path: path.includes('?') ? path : `${path}?query=%7B__typename%7D`, headers: auth(TOKEN) });
      assert.equal(get.status, 404, `GET ${path}: ${get.status} ${get.body}`);
    }
  });

  it('an upload or an SSE subscription on a look-alike path is refused and imports nothing', async () => {
    const m = multipart(sample);
    const up = await raw(t.url, { method: 'POST', path: '/graphql/', headers: { 'content-type': m.type, [UPLOAD_HEADER]: '1' }, body: m.body });
    assert.equal(up.status, 404, up.body);
    const sse = await raw(t.url, {
      method: 'POST',
      path: '/graphql/',
      headers: { ...JSON_HEADERS, accept: 'text/event-stream' },
      body: JSON.stringify({ query: 'subscription { flowUpdates { type } }' }),
      timeoutMs: 3000,
    });
    assert.equal(sse.status, 404, sse.body);
    assert.equal(await flowCount(t), 0);
  });

  it('every route has its rule: /health open, /graphql and /metrics need the token, everything else 404', async () => {
    const cases: { method: string; path: string; headers?: Record<string, string>; body?: string; none: number; wrong: number; right: number }[] = [
      { method: 'GET', path: '/health', none: 200, wrong: 200, right: 200 },
      { method: 'GET', path: '/metrics', none: 401, wrong: 401, right: 200 },
      { method: 'POST', path: '/graphql', headers: JSON_HEADERS, body: typename, none: 401, wrong: 401, right: 200 },
      { method: 'GET', path: '/graphql?query=%7B__typename%7D', none: 401, wrong: 401, right: 200 },
      { method: 'DELETE', path: '/graphql', none: 401, wrong: 401, right: 405 },
      { method: 'POST', path: '/metrics', none: 401, wrong: 401, right: 405 },
      { method: 'GET', path: '/', none: 404, wrong: 404, right: 404 },
      { method: 'GET', path: '/graphiql', none: 404, wrong: 404, right: 404 },
      { method: 'GET', path: '/nope', none: 404, wrong: 404, right: 404 },
      { method: 'POST', path: '/health', none: 405, wrong: 405, right: 405 },
    ];
    for (const c of cases) {
      for (const [who, headers, want] of [
        ['none', {}, c.none],
        ['wrong', auth('not-it'), c.wrong],
        ['right', auth(TOKEN), c.right],
      ] as const) {
        const r = await raw(t.url, { method: c.method, path: c.path, headers: { ...c.headers, ...headers }, body: c.body });
        assert.equal(r.status, want, `${c.method} ${c.path} with ${who} token: ${r.status} ${r.body.slice(0, 200)}`);
      }
    }
  });

  it('a WebSocket upgrade on any path but /graphql is refused', async () => {
    for (const path of ['/graphql/', '//graphql', '/x']) {
      const code = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${t.url.replace(/^http/, 'ws').replace(/\/graphql$/, '')}${path}`, 'graphql-transport-ws');
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => {
          ws.close();
          resolve(101);
        });
        ws.on('error', () => resolve(-1));
      });
      assert.equal(code, 404, path);
    }
  });
});

describe('API security: requests a browser sends cross-site without a preflight', () => {
  let t: TestServer;
  let sample: Buffer;
  let origin: string;
  before(async () => {
    t = await startTestServer({ webRoot: null, corsOrigins: ['http://console.test'] });
    sample = readFileSync(sampleCapture(join(t.dir, 'sample.pcap')).path);
    origin = new URL(t.url).origin;
  });
  after(() => t.stop());

  it('refuses a multipart upload from another origin (no-cors, no custom header) and imports nothing', async () => {
    const m = multipart(sample);
    for (const path of ['/graphql', '/graphql/']) {
      const r = await raw(t.url, {
        method: 'POST',
        path,
        headers: { 'content-type': m.type, origin: 'http://evil.test', 'sec-fetch-site': 'cross-site' },
        body: m.body,
      });
      assert.ok(r.status === 403 || r.status === 404, `${path}: ${r.status} ${r.body}`);
    }
    assert.equal(await flowCount(t), 0);
  });

  it('refuses form-encoded and text/plain bodies, which need no preflight', async () => {
    const form = await raw(t.url, {
      method: 'POST',
      path: '/graphql',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'query=%7B__typename%7D',
    });
    assert.equal(form.status, 415, form.body);
    const text = await raw(t.url, { method: 'POST', path: '/graphql', headers: { 'content-type': 'text/plain' }, body: typename });
    assert.equal(text.status, 415, text.body);
    const none = await raw(t.url, { method: 'POST', path: '/graphql', body: typename });
    assert.equal(none.status, 415, none.body);
  });

  it('refuses a JSON or GET request from an origin not allowed, and serves the same origin and allowed ones', async () => {
    const evil = await raw(t.url, { method: 'POST', path: '/graphql', headers: { ...JSON_HEADERS, origin: 'http://evil.test' }, body: typename });
    assert.equal(evil.status, 403, evil.body);
    const get = await raw(t.url, { path: '/graphql?query=%7B__typename%7D', headers: { 'sec-fetch-site': 'cross-site' } });
    assert.equal(get.status, 403, get.body);
    const metrics = await raw(t.url, { path: '/metrics', headers: { 'sec-fetch-site': 'cross-site' } });
    assert.equal(metrics.status, 403, metrics.body);
    const same = await raw(t.url, { method: 'POST', path: '/graphql', headers: { ...JSON_HEADERS, origin, 'sec-fetch-site': 'same-origin' }, body: typename });
    assert.equal(same.status, 200, same.body);
    const allowed = await raw(t.url, {
      method: 'POST',
      path: '/graphql',
      headers: { ...JSON_HEADERS, origin: 'http://console.test', 'sec-fetch-site': 'cross-site' },
      body: typename,
    });
    assert.equal(allowed.status, 200, allowed.body);
    const tool = await raw(t.url, { method: 'POST', path: '/graphql', headers: JSON_HEADERS, body: typename });
    assert.equal(tool.status, 200, 'a client that is not a browser sends neither header');
  });

  it('refuses a WebSocket from another origin (browsers open those cross-site without a preflight)', async () => {
    const code = await new Promise<number>((resolve) => {
      const ws = new WebSocket(t.url.replace(/^http/, 'ws'), 'graphql-transport-ws', { origin: 'http://evil.test' });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => {
        ws.close();
        resolve(101);
      });
      ws.on('error', () => resolve(-1));
    });
    assert.equal(code, 403);
  });
});

describe('API security: what one operation may cost', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ webRoot: null });
    // Imported through the server's own upload path, so the store holds the sample.
    const s = sampleCapture(join(t.dir, 'sample.pcap'));
    const m = multipart(readFileSync(s.path));
    const r = await raw(t.url, { method: 'POST', path: '/graphql', headers: { 'content-type': m.type, [UPLOAD_HEADER]: '1' }, body: m.body });
    assert.equal(r.status, 200, r.body);
  });
  after(() => t.stop());

  it('counts a store query as expensive whatever its first: many aliased flows(first:1) are refused before any runs', async () => {
    const aliases = Array.from({ length: 100 }, (_, i) => `a${i}: flows(first: 1, from: "${RANGE.from}", to: "${RANGE.to}") { totalCount }`).join('\n');
    const r = await gql(t.url, `{ ${aliases} }`);
    assert.equal(r.data, undefined);
    assert.match(r.errors?.[0]?.message ?? '', /cost|aliases/);
    const ok = await gql(
      t.url,
      `{ a: flows(first: 1, from: "${RANGE.from}", to: "${RANGE.to}") { totalCount } b: flows(first: 2, from: "${RANGE.from}", to: "${RANGE.to}") { totalCount } }`,
    );
    assert.equal(ok.errors, undefined, JSON.stringify(ok.errors));
    assert.equal(ok.data.a.totalCount, 16);
  });

  it('puts introspection under the same limits: aliased __schema selections are refused', async () => {
    const aliases = Array.from({ length: 200 }, (_, i) => `s${i}: __schema { types { name fields { name } } }`).join('\n');
    const r = await gql(t.url, `{ ${aliases} }`);
    assert.equal(r.data, undefined);
    assert.match(r.errors?.[0]?.message ?? '', /cost|aliases/);
    const one = await gql(t.url, '{ __schema { queryType { name } } }');
    assert.equal(one.data?.__schema?.queryType?.name, 'Query', 'introspection is on by default without a token');
  });

  it('answers a selection nested 10,000 deep with one clear error, not a 500', async () => {
    const deep = `${'{ a '.repeat(10_000)}${'}'.repeat(10_000)}`;
    const r = await raw(t.url, { method: 'POST', path: '/graphql', headers: JSON_HEADERS, body: JSON.stringify({ query: deep }) });
    assert.ok(r.status >= 200 && r.status < 500, `HTTP ${r.status}`);
    assert.match(r.body, /nest|deep|depth|tokens/i);
  });

  it('says "invalid cursor" for a cursor that holds an absurd number', async () => {
    const cursor = Buffer.from(JSON.stringify(['time', 1e300, '0123456789abcdef'])).toString('base64url');
    const r = await gql(t.url, `{ flows(first: 1, after: "${cursor}", from: "${RANGE.from}", to: "${RANGE.to}") { totalCount } }`);
    assert.equal(r.errors?.[0]?.message, 'invalid cursor');
  });

  it('refuses a JSON body over the limit before reading it whole', async () => {
    const big = JSON.stringify({ query: `{ __typename } # ${'x'.repeat(3 * 1024 * 1024)}` });
    const r = await raw(t.url, { method: 'POST', path: '/graphql', headers: JSON_HEADERS, body: big });
    assert.ok(r.status === 413 || r.status === -1, `HTTP ${r.status}`);
  });
});

describe('API security: introspection with a token', () => {
  it('is off by default when a token is set, and can be switched on', async () => {
    const off = await startTestServer({ token: TOKEN, webRoot: null });
    const on = await startTestServer({ token: TOKEN, webRoot: null, introspection: true });
    try {
      const r = await gql(off.url, '{ __schema { queryType { name } } }', {}, TOKEN);
      assert.equal(r.data, undefined);
      assert.match(r.errors?.[0]?.message ?? '', /introspection/i);
      const ok = await gql(on.url, '{ __schema { queryType { name } } }', {}, TOKEN);
      assert.equal(ok.data?.__schema?.queryType?.name, 'Query');
    } finally {
      await off.stop();
      await on.stop();
    }
  });
});

describe('API security: a timed-out query is cancelled in the store', () => {
  it('aborts the store query when the time limit passes', async () => {
    let aborted = 0;
    let started = 0;
    // The store's own cancellation is tested in test/store-pool.test.ts; here, that the API asks
    // for it: a real store whose queryFlows waits until it is told to stop.
    const dir = mkdtempSync(join(tmpdir(), 'flowlens-sec-'));
    const real = await openStore({ db: join(dir, 'flows.duckdb') });
    const slow: FlowStore = Object.create(real);
    slow.queryFlows = (_q, opts?: QueryOptions) => {
      started++;
      return new Promise((_resolve, reject) => {
        opts?.signal?.addEventListener('abort', () => {
          aborted++;
          reject(opts.signal?.reason ?? new Error('aborted'));
        });
      });
    };
    const t = await startTestServer({ webRoot: null, limits: { queryTimeoutMs: 200 }, store: slow });
    try {
      const before = Date.now();
      const r = await gql(t.url, `{ flows(first: 1, from: "${RANGE.from}", to: "${RANGE.to}") { totalCount } }`);
      assert.match(r.errors?.[0]?.message ?? '', /took longer than 200 ms/);
      assert.ok(Date.now() - before < 5000);
      assert.equal(started, 1, 'the store was asked');
      assert.equal(aborted, 1, 'and told to stop');
    } finally {
      await t.stop();
      await real.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('API security: uploads', () => {
  it('refuses an upload over the limit while it streams, with no Content-Length, and imports nothing', async () => {
    const t = await startTestServer({ webRoot: null, maxUploadBytes: 256 * 1024 });
    try {
      const m = multipart(Buffer.alloc(2 * 1024 * 1024, 7));
      const r = await raw(t.url, {
        method: 'POST',
        path: '/graphql',
        headers: { 'content-type': m.type, [UPLOAD_HEADER]: '1', 'transfer-encoding': 'chunked' },
        body: async function* () {
          for (let i = 0; i < m.body.length; i += 64 * 1024) yield m.body.subarray(i, i + 64 * 1024);
        },
      });
      assert.ok(r.status === 413 || r.status === -1, `HTTP ${r.status} ${r.body}`);
      assert.equal(await flowCount(t), 0);
      assert.equal(t.server.imports.inProgress().length, 0, 'the slot was given back');
    } finally {
      await t.stop();
    }
  });

  it('refuses uploads beyond the concurrent imports before reading their bodies', async () => {
    const t = await startTestServer({ webRoot: null });
    try {
      const slots = [await t.server.imports.reserve(), await t.server.imports.reserve()];
      const m = multipart(Buffer.alloc(1024));
      const r = await raw(t.url, { method: 'POST', path: '/graphql', headers: { 'content-type': m.type, [UPLOAD_HEADER]: '1' }, body: m.body });
      assert.equal(r.status, 429, r.body);
      assert.match(r.body, /imports are in progress/);
      for (const s of slots) s.release();
      const again = await raw(t.url, { method: 'POST', path: '/graphql', headers: { 'content-type': m.type, [UPLOAD_HEADER]: '1' }, body: m.body });
      assert.equal(again.status, 200, again.body);
    } finally {
      await t.stop();
    }
  });

  it('imports an upload larger than 25 MB (graphql-yoga’s own body limit) when the flag allows it', async () => {
    const t = await startTestServer({ webRoot: null, maxUploadBytes: 64 * 1024 * 1024 });
    try {
      // One UDP flow of 22,000 full-size datagrams: 30 MB, every byte a real packet.
      const frames = toFrames(
        LINKTYPE.ETHERNET,
        udpExchange({
          client: { ip: '10.9.0.1', port: 5000 },
          server: { ip: '10.9.0.2', port: 6000 },
          start: ts(1_700_000_000),
          step: 1000n,
          messages: Array.from({ length: 22_000 }, () => ({ from: 'client' as const, bytes: 1400 })),
        }),
      );
      const file = pcap({ linktype: LINKTYPE.ETHERNET }, frames);
      assert.ok(file.length > 30 * 1024 * 1024, `${file.length} bytes`);
      const m = multipart(file);
      const r = await raw(t.url, {
        method: 'POST',
        path: '/graphql',
        headers: { 'content-type': m.type, [UPLOAD_HEADER]: '1' },
        body: m.body,
        timeoutMs: 120_000,
      });
      assert.equal(r.status, 200, r.body.slice(0, 300));
      const body = JSON.parse(r.body);
      assert.equal(body.errors, undefined, r.body.slice(0, 300));
      assert.equal(body.data.importCapture.summary.flows, 1, r.body.slice(0, 300));
    } finally {
      await t.stop();
    }
  });
});

describe('API security: subscriptions', () => {
  it('caps subscriptions per WebSocket connection with a clear error', async () => {
    const t = await startTestServer({ webRoot: null, maxSubscriptionsPerConnection: 5 });
    const client = createClient({ url: t.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
    try {
      const errors: string[] = [];
      const disposers: (() => void)[] = [];
      for (let i = 0; i < 8; i++) {
        disposers.push(
          client.subscribe(
            { query: 'subscription { flowUpdates { type } }' },
            {
              next: () => {},
              error: (e) => errors.push(Array.isArray(e) ? String(e[0]?.message) : String((e as Error).message ?? e)),
              complete: () => {},
            },
          ),
        );
      }
      const deadline = Date.now() + 5000;
      while (errors.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(errors.length, 3, JSON.stringify(errors));
      assert.match(errors[0], /at most 5 subscriptions/);
      for (const d of disposers) d();
    } finally {
      await client.dispose();
      await t.stop();
    }
  });

  it('caps subscriptions per server, over SSE too', async () => {
    const t = await startTestServer({ webRoot: null, maxSubscriptions: 3 });
    const aborts: AbortController[] = [];
    try {
      const statuses: string[] = [];
      for (let i = 0; i < 5; i++) {
        const abort = new AbortController();
        aborts.push(abort);
        const res = await fetch(t.url, {
          method: 'POST',
          headers: { ...JSON_HEADERS, accept: 'text/event-stream' },
          body: JSON.stringify({ query: 'subscription { flowUpdates { type } }' }),
          signal: abort.signal,
        });
        const reader = res.body!.getReader();
        // The first chunk: either the stream's opening or an error event.
        const first = await Promise.race([
          reader.read().then((c) => new TextDecoder().decode(c.value)),
          new Promise<string>((r) => setTimeout(() => r(''), 500)),
        ]);
        statuses.push(first);
      }
      const refused = statuses.filter((s) => /at most 3 subscriptions/.test(s));
      assert.equal(refused.length, 2, JSON.stringify(statuses));
    } finally {
      for (const a of aborts) a.abort();
      await t.stop();
    }
  });
});

describe('API security: logs', () => {
  it('logs a bad query at info without its text', async () => {
    const lines: { level: number; msg: string }[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    const t = await startTestServer({ webRoot: null, logger: pino({ level: 'debug' }, sink) });
    try {
      const secret = 'SELECT_password_FROM_users';
      await gql(t.url, `{ flows(first: 1, from: "${secret}") { totalCount } }`);
      await gql(t.url, `{ nosuchfield_${secret} }`);
      await gql(t.url, `{ flows(first: 5000) { totalCount } }`);
      assert.ok(lines.length > 0, 'the bad queries were logged');
      for (const l of lines) {
        assert.ok(l.level < 50, `logged at error level: ${JSON.stringify(l)}`);
        assert.doesNotMatch(JSON.stringify(l), new RegExp(secret), 'the query text is not in the log');
      }
    } finally {
      await t.stop();
    }
  });
});

describe('API security: serve on a public address', () => {
  it('refuses --host 0.0.0.0 without a token unless --insecure-no-token is given', async () => {
    const r = await runCli(['serve', '--host', '0.0.0.0', '--port', '0', '--db', ':memory:'], { timeoutMs: 20_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--token.*--insecure-no-token|--insecure-no-token.*--token/s);
  });
});
