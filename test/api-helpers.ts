/**
 * Support for the API tests (test/api-*.test.ts): a real server on 127.0.0.1 with an ephemeral
 * port over a DuckDB store in a temp dir, a generated capture with known flows, and small
 * GraphQL-over-HTTP / SSE clients.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { MemoryBus } from '../src/bus/memory.js';
import { startApiServer, type ApiServer, type ApiServerOptions } from '../src/api/server.js';
import { openStore } from '../src/store/index.js';
import type { FlowStore } from '../src/store/types.js';
import { LINKTYPE, byTime, directionTotals, icmpPing, tcpConversation, toFrames, ts, udpExchange, type Frame, type TimedPacket } from './helpers/frames.js';
import { pcap, writeCapture } from './helpers/pcap-writer.js';

/** Start of the sample capture: a whole hour, so buckets of any step up to an hour start at it. */
export const BASE = 1_699_999_200;
export const BASE_ISO = new Date(BASE * 1000).toISOString();
export const isoAt = (sec: number) => new Date((BASE + sec) * 1000).toISOString();

export interface SampleFlow {
  clientIp: string;
  serverIp: string;
  serverPort: number;
  transport: string;
  clientPackets: number;
  clientBytes: number;
  serverPackets: number;
  serverBytes: number;
  /** Seconds after BASE. */
  start: number;
}

/**
 * 12 HTTPS flows from 10.0.0.1 (one every 20 s, growing sizes, so four one-minute buckets),
 * 3 DNS exchanges from 10.0.0.2 and one ping from 10.0.0.3: 16 flows.
 * `prefix` picks the second octet, so two captures do not share hosts.
 */
export function sampleCapture(path: string, prefix = 0): { path: string; flows: SampleFlow[]; frames: Frame[] } {
  const net = (c: number, d: number) => `10.${prefix}.${c}.${d}`;
  const flows: SampleFlow[] = [];
  const frames: Frame[] = [];
  const add = (meta: Omit<SampleFlow, keyof ReturnType<typeof directionTotals>>, pkts: TimedPacket[]) => {
    const f = toFrames(LINKTYPE.ETHERNET, pkts);
    frames.push(...f);
    flows.push({ ...meta, ...directionTotals(f) });
  };
  for (let i = 0; i < 12; i++) {
    const start = i * 20;
    add(
      { clientIp: net(0, 1), serverIp: net(1, i + 1), serverPort: 443, transport: 'tcp', start },
      tcpConversation({
        client: { ip: net(0, 1), port: 40000 + i },
        server: { ip: net(1, i + 1), port: 443 },
        start: ts(BASE + start),
        data: [
          { from: 'client', bytes: 100 },
          { from: 'server', bytes: 1000 * (i + 1) },
        ],
      }),
    );
  }
  for (let i = 0; i < 3; i++) {
    const start = 5 + i * 60;
    add(
      { clientIp: net(0, 2), serverIp: net(2, 1), serverPort: 53, transport: 'udp', start },
      udpExchange({
        client: { ip: net(0, 2), port: 50000 + i },
        server: { ip: net(2, 1), port: 53 },
        start: ts(BASE + start),
        messages: [
          { from: 'client', bytes: 40 },
          { from: 'server', bytes: 120 },
        ],
      }),
    );
  }
  add(
    { clientIp: net(0, 3), serverIp: net(0, 1), serverPort: 0, transport: 'icmp', start: 30 },
    icmpPing({ client: net(0, 3), server: net(0, 1), start: ts(BASE + 30), count: 3 }),
  );
  writeCapture(path, pcap({ linktype: LINKTYPE.ETHERNET }, byTime(frames)));
  return { path, flows, frames };
}

export interface TestServer {
  server: ApiServer;
  store: FlowStore;
  bus: MemoryBus;
  dir: string;
  url: string;
  stop(): Promise<void>;
}

export async function startTestServer(opts: Partial<ApiServerOptions> = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'flowlens-api-'));
  const store = await openStore({ db: join(dir, 'flows.duckdb') });
  const bus = new MemoryBus();
  const server = await startApiServer({ store, bus, logger: pino({ level: 'silent' }), host: '127.0.0.1', port: 0, flow: { intervalSec: 60 }, ...opts });
  return {
    server,
    store,
    bus,
    dir,
    url: server.url,
    stop: async () => {
      await server.close();
      await bus.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface GqlResponse<T = any> {
  status: number;
  data?: T;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

export async function gql<T = any>(url: string, query: string, variables: Record<string, unknown> = {}, token?: string): Promise<GqlResponse<T>> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as Omit<GqlResponse<T>, 'status'>;
  return { status: res.status, ...body };
}

/** Data of a query that must succeed. */
export async function gqlData<T = any>(url: string, query: string, variables: Record<string, unknown> = {}, token?: string): Promise<T> {
  const r = await gql<T>(url, query, variables, token);
  if (r.errors?.length || r.data === undefined) throw new Error(`GraphQL errors (HTTP ${r.status}): ${JSON.stringify(r.errors)}`);
  return r.data;
}

/** A subscription over SSE (graphql-yoga's built-in): collects each `next` payload's data. */
export function sseSubscribe(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  token?: string,
): { events: any[]; ready: Promise<void>; close: () => void } {
  const events: any[] = [];
  const abort = new AbortController();
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream' };
  if (token) headers.authorization = `Bearer ${token}`;
  const ready = (async () => {
    const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }), signal: abort.signal });
    if (res.status !== 200 || !res.body) throw new Error(`SSE subscription refused: HTTP ${res.status} ${await res.text()}`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    // Read in the background until closed; events are separated by a blank line.
    void (async () => {
      let buf = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event === 'next' && data) events.push(JSON.parse(data).data);
          }
        }
      } catch {
        // aborted by close()
      }
    })();
  })();
  return { events, ready, close: () => abort.abort() };
}

export async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
