// The API server over node:http. Every request meets the same checks, in this order, before
// anything answers it (deny by default):
//   1. its path, taken byte for byte before '?', names a route exactly (ROUTES) or a file of the
//      web client; anything else is 404, so '/graphql/', '//graphql' or '/x?y=/graphql' are not
//      /graphql;
//   2. on a loopback listener, the Host header names loopback (a DNS-rebound name does not);
//   3. a request that a browser sent from another site (Origin, or Sec-Fetch-Site without one)
//      is refused unless its origin is allowed (--cors-origin);
//   4. the route's access rule (the bearer token for /graphql, /metrics and /pcap);
//   5. the route's methods, and for GraphQL POSTs a JSON body of bounded size or a multipart
//      upload with the upload header (custom headers force a CORS preflight).
// GraphQL runs in graphql-yoga (queries, mutations, SSE subscriptions) and graphql-ws on the same
// path (WebSocket subscriptions); uploads are streamed to disk by uploads.ts before the operation
// runs. The store and bus are the caller's: the server never closes them.
import { createHash, timingSafeEqual } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { GraphQLError, getOperationAST, type execute as graphqlExecute, type subscribe as graphqlSubscribe } from 'graphql';
import type { Context as WsContext } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { useGraphQlJit } from '@envelop/graphql-jit';
import { createYoga, maskError as yogaMaskError, type Plugin } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { Logger } from 'pino';
import type { EventBus } from '../bus/types.js';
import type { AggregatorOptions } from '../flow/aggregator.js';
import { FlowFilterError } from '../records/flow-filter.js';
import { StoreBusyError, StoreQueryCancelled, StoreQueryError, type FlowStore } from '../store/types.js';
import { UPLOAD_HEADER } from './client.js';
import type { ApiContext } from './context.js';
import { DefaultRanges } from './default-range.js';
import { ImportBusyError, ImportManager, type ImportSlot } from './imports.js';
import { DEFAULT_LIMITS, useOperationLimits, type OperationLimits } from './limits.js';
import { Metrics } from './metrics.js';
import { PCAP_PATH, servePcap } from './pcap.js';
import { PacketIndexReader } from '../packets/index-reader.js';
import { buildSchema } from './schema/index.js';
import { NO_LIVE_CAPTURE, type StatusProvider } from './status.js';
import { receiveUpload, UploadError, type DiskUpload } from './uploads.js';
import { defaultWebRoot, serveWebClient } from './web-client.js';
import { enricherOf } from '../enrich/enricher.js';

export const GRAPHQL_PATH = '/graphql';
/** The host of the request an upload's operation is run as (it never leaves the process). */
const LOOPBACK_NAME = '127.0.0.1';
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 4000;
/** Uploads are streamed to disk; this caps their size. */
export const DEFAULT_MAX_UPLOAD_BYTES = 512 * 1024 * 1024;
/** A GraphQL request as JSON: a query and its variables. */
export const MAX_JSON_BODY_BYTES = 1024 * 1024;
export const DEFAULT_MAX_SUBSCRIPTIONS = 1000;
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION = 100;

export interface ApiServerOptions {
  store: FlowStore;
  bus: EventBus;
  logger: Logger;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** When set, every request to /graphql and /metrics and every WebSocket connection must present it. */
  token?: string;
  /** Listening beyond loopback without a token is refused unless this is set. */
  insecureNoToken?: boolean;
  /** Origins allowed cross-origin (CORS); none when empty. '*' allows any. */
  corsOrigins?: string[];
  status?: StatusProvider;
  limits?: Partial<OperationLimits>;
  /** Answer introspection queries (default: without a token only). */
  introspection?: boolean;
  /** Live subscriptions on the server at once (WebSocket and SSE). */
  maxSubscriptions?: number;
  /** Operations at once on one WebSocket. */
  maxSubscriptionsPerConnection?: number;
  /** Aggregation settings for imports through the server (and the traffic step unit). */
  flow?: Partial<Omit<AggregatorOptions, 'bus' | 'iface'>>;
  maxUploadBytes?: number;
  /** Directory of the built web client served at `/` (default: dist/web when built); null: none. */
  webRoot?: string | null;
  /** The packet index (src/packets) that /pcap and the pcapUrl fields read; none: no packets are served. */
  packetsDir?: string;
}

export interface ApiServer {
  url: string;
  /** Where the web client is served (`/`), or null when it is not built (npm run build:web). */
  webUrl: string | null;
  host: string;
  port: number;
  metrics: Metrics;
  imports: ImportManager;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
}

/** Refuses to expose the data beyond loopback with no token, unless the user insists. */
export function checkExposure(host: string, token: string | undefined, insecureNoToken: boolean | undefined): void {
  if (isLoopback(host) || token || insecureNoToken) return;
  throw new Error(
    `refusing to listen on ${host} without a token: anyone who reaches it could read all traffic data and import captures. ` +
      'Set --token (FLOWLENS_TOKEN), listen on 127.0.0.1, or pass --insecure-no-token if this network is trusted.',
  );
}

function tokenChecker(token: string | undefined): (presented: string | undefined) => boolean {
  if (!token) return () => true;
  // Digests have equal lengths, so the comparison takes the same time whatever was presented.
  const want = createHash('sha256').update(token).digest();
  return (presented) => presented !== undefined && timingSafeEqual(createHash('sha256').update(presented).digest(), want);
}

function bearer(header: string | undefined): string | undefined {
  const m = header ? /^Bearer\s+(.+)$/i.exec(header) : null;
  return m ? m[1].trim() : undefined;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

interface Route {
  methods: string[];
  /** The bearer token is required (when the server has one). */
  token: boolean;
}

/** Every path the server answers besides the web client's files. */
const ROUTES: Record<string, Route> = {
  // No details: /health answers without a token, and details name files and hosts.
  '/health': { methods: ['GET', 'HEAD'], token: false },
  '/metrics': { methods: ['GET', 'HEAD'], token: true },
  [GRAPHQL_PATH]: { methods: ['GET', 'POST', 'OPTIONS'], token: true },
  // Captures are data: the same rules as GraphQL.
  [PCAP_PATH]: { methods: ['GET'], token: true },
};

/** The path of a request target, exactly as sent; null for anything but an origin-form path. */
export function requestPath(url: string | undefined): string | null {
  if (url?.[0] !== '/' || url.startsWith('//')) return null;
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

const LOOPBACK_HOST = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/i;

/**
 * Why a request is refused as cross-site, or undefined. Browsers send Origin with every POST and
 * cross-origin request, and Sec-Fetch-Site with every request; other clients send neither.
 */
function crossSiteRefusal(req: IncomingMessage, allowed: string[]): string | undefined {
  const origin = req.headers.origin;
  if (origin === 'null') return 'an opaque origin is not allowed';
  if (typeof origin === 'string') {
    if (allowed.includes('*') || allowed.includes(origin)) return undefined;
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      return `bad Origin ${origin}`;
    }
    return host === req.headers.host ? undefined : `origin ${origin} is not allowed (--cors-origin)`;
  }
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return 'a cross-site request without an allowed Origin';
  return undefined;
}

/** yoga's log arguments as one line, at most 300 characters: they may quote a client's query. */
function clip(args: unknown[]): string {
  const text = args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ');
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const logger = opts.logger;
  const host = opts.host ?? DEFAULT_HOST;
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const maxUpload = opts.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  checkExposure(host, opts.token, opts.insecureNoToken);
  const authorized = tokenChecker(opts.token);
  const corsOrigins = opts.corsOrigins ?? [];
  const introspection = opts.introspection ?? !opts.token;
  const maxSubscriptions = opts.maxSubscriptions ?? DEFAULT_MAX_SUBSCRIPTIONS;
  const maxPerConnection = opts.maxSubscriptionsPerConnection ?? DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION;
  const metrics = new Metrics();
  const webRoot = opts.webRoot === null ? undefined : (opts.webRoot ?? defaultWebRoot());
  const packets = opts.packetsDir ? new PacketIndexReader(opts.packetsDir) : undefined;

  const operations = metrics.counter('flowlens_graphql_operations_total', 'GraphQL operations executed, by type');
  const rejected = metrics.counter('flowlens_http_rejected_total', 'Requests refused before GraphQL, by reason');
  const dropped = metrics.counter('flowlens_subscription_events_dropped_total', 'Events a slow subscriber did not get, by topic');
  const subscriptions = metrics.gauge('flowlens_subscriptions_active', 'Subscriptions open now, by field');
  const wsConnections = metrics.gauge('flowlens_websocket_connections', 'WebSocket connections open now');
  wsConnections.set(0);
  metrics.gauge('flowlens_store_up', 'Store health check result (1 ok, 0 failing), at scrape time', async () => ((await opts.store.health()).ok ? 1 : 0));
  metrics.gauge('flowlens_store_spooled_batches', 'Batches waiting in the store outage spool', async () => (await opts.store.health()).spooled ?? 0);
  const bus = opts.bus;
  if (bus.droppedInvalid) {
    const read = bus.droppedInvalid.bind(bus);
    metrics.counterFrom('flowlens_bus_events_invalid_total', 'Bus messages dropped because they were not the event their subject names, by reason', () =>
      Object.entries(read()).map(([reason, value]) => ({ labels: { reason }, value })),
    );
  }
  if (bus.refusedPublishes) {
    const read = bus.refusedPublishes.bind(bus);
    metrics.counterFrom('flowlens_bus_publishes_refused_total', 'Publishes the bus server refused (permissions), by subject', () =>
      Object.entries(read()).map(([subject, value]) => ({ labels: { subject }, value })),
    );
  }
  const started = Date.now();
  metrics.gauge('flowlens_uptime_seconds', 'Seconds since the server started', () => Math.round((Date.now() - started) / 1000));

  const imports = new ImportManager({
    store: opts.store,
    bus: opts.bus,
    metrics,
    flow: opts.flow ?? {},
    onWarning: (message) => logger.warn(message),
  });

  const status = opts.status ?? NO_LIVE_CAPTURE;
  const intervalUs = (opts.flow?.intervalSec ?? 60) * 1_000_000;
  const ranges = new DefaultRanges(opts.store, status, intervalUs);
  // An import moves the data's latest range: the next query must not reuse the one before it.
  imports.onProgress((job) => {
    if (job.state === 'done' || job.state === 'failed') ranges.invalidate();
  });

  let openSubscriptions = 0;
  const shared: Omit<ApiContext, 'signal' | 'cancel' | 'upload'> = {
    store: opts.store,
    enrich: enricherOf(opts.flow?.enrich),
    bus: opts.bus,
    imports,
    metrics,
    status,
    ranges,
    intervalUs,
    startedAt: started * 1000,
    packets,
    dropped: (topic) => dropped(1, { topic }),
    subscriptionOpened: (field) => {
      if (openSubscriptions >= maxSubscriptions) {
        rejected(1, { reason: 'too_many_subscriptions' });
        throw new GraphQLError(`the server has at most ${maxSubscriptions} subscriptions open at once; try again later`, {
          extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' },
        });
      }
      openSubscriptions++;
      subscriptions.add(1, { field });
      let open = true;
      return () => {
        if (open) {
          openSubscriptions--;
          subscriptions.add(-1, { field });
        }
        open = false;
      };
    },
  };

  /** One context per operation: its own signal, aborted by the time limit or when the client goes. */
  const contextFor = (request: { signal?: AbortSignal } | undefined, upload?: ApiContext['upload']): ApiContext => {
    const controller = new AbortController();
    const gone = request?.signal;
    if (gone) {
      if (gone.aborted) controller.abort(new Error('the client went away'));
      else gone.addEventListener('abort', () => controller.abort(new Error('the client went away')), { once: true });
    }
    return { ...shared, signal: controller.signal, cancel: (reason) => controller.abort(reason), upload };
  };

  const countOperations: Plugin = {
    onExecute({ args }) {
      operations(1, { type: getOperationAST(args.document, args.operationName)?.operation ?? 'unknown' });
    },
    onSubscribe() {
      operations(1, { type: 'subscription' });
    },
  };

  const yoga = createYoga<Record<string, unknown>, ApiContext>({
    schema: buildSchema(),
    graphqlEndpoint: GRAPHQL_PATH,
    context: (init) => contextFor(init.request, (init as { upload?: ApiContext['upload'] }).upload),
    landingPage: false,
    // GraphiQL needs introspection; uploads are read by uploads.ts, never by yoga.
    graphiql: introspection ? { title: 'flowlens' } : false,
    // GraphiQL from the package (@graphql-yoga/render-graphiql, its scripts inline), not yoga's
    // default page, which loads them from unpkg.com and stays blank without internet. Loaded on
    // the first GraphiQL page only: the bundle is ~9 MB of text.
    renderGraphiQL: async (options) => (await import('@graphql-yoga/render-graphiql')).renderGraphiQL(options),
    multipart: false,
    cors: corsOrigins.length
      ? { origin: corsOrigins, credentials: false, allowedHeaders: ['content-type', 'authorization', UPLOAD_HEADER], methods: ['GET', 'POST', 'OPTIONS'] }
      : false,
    maskedErrors: {
      isDev: false,
      maskError: (error, message) => {
        const original = error instanceof GraphQLError ? error.originalError : error;
        // The store rejects bad arguments with a message meant for the caller (bad cursor, range).
        if (original instanceof StoreQueryError || original instanceof FlowFilterError)
          return new GraphQLError(original.message, { extensions: { code: 'BAD_USER_INPUT' } });
        if (original instanceof StoreBusyError) return new GraphQLError(original.message, { extensions: { code: 'STORE_BUSY' } });
        if (original instanceof StoreQueryCancelled) return new GraphQLError(original.message, { extensions: { code: 'QUERY_CANCELLED' } });
        const masked = yogaMaskError(error, message, false);
        if (masked !== error) logger.error({ err: original }, 'GraphQL resolver failed');
        return masked;
      },
    },
    // yoga logs what clients sent wrong (bad queries, variables) at error level with the query's
    // text: a client's mistake is not the server's error, and the text may hold what it searched for.
    logging: {
      debug: (...a: unknown[]) => logger.debug(clip(a)),
      info: (...a: unknown[]) => logger.debug(clip(a)),
      warn: (...a: unknown[]) => logger.info(clip(a)),
      error: (...a: unknown[]) => logger.info(clip(a)),
    },
    // Queries run compiled (graphql-jit: a function per document, cached with it) rather than
    // interpreted field by field: a page of 100 flows is ~2500 fields. Mutations and subscriptions
    // keep graphql-js. The JIT comes first so that the limits' time limit wraps what it sets.
    plugins: [
      useGraphQlJit({}, { enableIf: (args) => getOperationAST(args.document, args.operationName)?.operation === 'query' }),
      useOperationLimits(limits, { introspection }),
      countOperations,
    ],
  });

  const refuse = (res: ServerResponse, status: number, reason: string, message: string, headers: Record<string, string> = {}) => {
    rejected(1, { reason });
    sendJson(res, status, { errors: [{ message, extensions: { code: reason.toUpperCase() } }] }, headers);
  };
  const loopbackOnly = isLoopback(host);

  /** Checks 2 and 3 of the header comment: the status, reason and message of a refusal, or undefined. */
  const siteRefusal = (req: IncomingMessage): [number, string, string] | undefined => {
    if (loopbackOnly && !LOOPBACK_HOST.test(req.headers.host ?? '')) {
      return [421, 'misdirected', `this server answers only to loopback names (Host: ${String(req.headers.host ?? '')})`];
    }
    const why = crossSiteRefusal(req, corsOrigins);
    return why ? [403, 'cross_site', why] : undefined;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = requestPath(req.url);
    const route = path === null ? undefined : ROUTES[path];
    const method = req.method ?? 'GET';
    if (!route) {
      // The web client's files hold no data: a link from another site may open them.
      if (path !== null && (await serveWebClient(webRoot, req, res, path))) return;
      refuse(res, 404, 'not_found', 'not found');
      return;
    }
    if (route.token) {
      const refusal = siteRefusal(req);
      if (refusal) {
        refuse(res, ...refusal);
        return;
      }
      // CORS preflights carry no credentials by design; yoga answers them.
      if (method !== 'OPTIONS' && !authorized(bearer(req.headers.authorization))) {
        refuse(res, 401, 'unauthenticated', 'missing or wrong bearer token (Authorization: Bearer <token>)', { 'www-authenticate': 'Bearer realm="flowlens"' });
        return;
      }
    }
    if (!route.methods.includes(method)) {
      refuse(res, 405, 'method_not_allowed', `${method} is not allowed here`, { allow: route.methods.join(', ') });
      return;
    }
    if (path === '/health') {
      const h = await opts.store.health();
      sendJson(res, h.ok ? 200 : 503, { status: h.ok ? 'ok' : 'degraded', store: { backend: h.backend, ok: h.ok } });
      return;
    }
    if (path === PCAP_PATH) {
      if (!packets) refuse(res, 404, 'not_held', 'this server holds no packets (no packet index: --packets-dir)');
      else await servePcap(req, res, { store: opts.store, packets, logger });
      return;
    }
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(method === 'HEAD' ? undefined : await metrics.render());
      return;
    }
    if (method === 'POST') {
      const type = String(req.headers['content-type'] ?? '');
      if (/^multipart\/form-data/i.test(type)) {
        await handleUpload(req, res);
        return;
      }
      if (!/^application\/(json|graphql-response\+json)\s*(;|$)/i.test(type)) {
        refuse(
          res,
          415,
          'unsupported_media_type',
          `GraphQL requests are JSON (Content-Type: application/json), or multipart uploads with the ${UPLOAD_HEADER} header`,
        );
        return;
      }
      const length = Number(req.headers['content-length']);
      if (req.headers['content-length'] === undefined || !Number.isFinite(length)) {
        refuse(res, 411, 'length_required', 'GraphQL POSTs need a Content-Length', { connection: 'close' });
        return;
      }
      if (length > MAX_JSON_BODY_BYTES) {
        refuse(res, 413, 'too_large', `a GraphQL request of ${length} bytes exceeds the limit of ${MAX_JSON_BODY_BYTES} bytes`, { connection: 'close' });
        return;
      }
    }
    await yoga(req, res);
  };

  /** A multipart upload: a slot first, then the files to disk under the limit, then the operation. */
  const handleUpload = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.headers[UPLOAD_HEADER] === undefined) {
      refuse(res, 400, 'bad_request', `multipart requests must carry the ${UPLOAD_HEADER} header`, { connection: 'close' });
      return;
    }
    const length = Number(req.headers['content-length']);
    if (Number.isFinite(length) && length > maxUpload) {
      refuse(res, 413, 'too_large', `upload of ${length} bytes exceeds the limit of ${maxUpload} bytes`, { connection: 'close' });
      return;
    }
    let slot: ImportSlot;
    try {
      slot = imports.reserve();
    } catch (err) {
      if (!(err instanceof ImportBusyError)) throw err;
      refuse(res, 429, 'busy', err.message, { connection: 'close', 'retry-after': '10' });
      return;
    }
    let dir: string | undefined;
    try {
      let files: Map<string, DiskUpload>;
      let operations: Record<string, unknown>;
      try {
        ({ files, operations, dir } = await receiveUpload(req, { maxBytes: maxUpload }));
      } catch (err) {
        if (!(err instanceof UploadError)) throw err;
        refuse(res, err.status, err.status === 413 ? 'too_large' : 'bad_request', err.message, { connection: 'close' });
        return;
      }
      const headers = new Headers({
        'content-type': 'application/json',
        accept: String(req.headers.accept ?? 'application/graphql-response+json, application/json'),
      });
      const request = new Request(`http://${LOOPBACK_NAME}${GRAPHQL_PATH}`, { method: 'POST', headers, body: JSON.stringify(operations) });
      const response = await yoga.fetch(request, { upload: { files, slot } });
      const body = Buffer.from(await response.arrayBuffer());
      res.writeHead(response.status, { ...Object.fromEntries(response.headers), 'content-length': String(body.length) });
      res.end(body);
    } finally {
      slot.release();
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { errors: [{ message: 'internal server error' }] });
      else res.destroy();
    });
  });
  // Uploads of large captures take a while to arrive.
  server.requestTimeout = 15 * 60 * 1000;

  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  // The same checks as HTTP before the upgrade; the token comes in connection_init (browsers
  // cannot set headers on a WebSocket). Browsers open WebSockets cross-site without a preflight.
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const deny = (status: number, reason: string) => {
      rejected(1, { reason });
      socket.end(`HTTP/1.1 ${status} ${reason.replace(/_/g, ' ')}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    };
    if (requestPath(req.url) !== GRAPHQL_PATH) return deny(404, 'not_found');
    const refusal = siteRefusal(req);
    if (refusal) return deny(refusal[0], refusal[1]);
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  /** Operations open on each WebSocket connection. */
  const perConnection = new WeakMap<object, number>();
  wss.on('connection', (socket) => {
    wsConnections.add(1);
    socket.once('close', () => wsConnections.add(-1));
  });
  const wsServer = useServer<Record<string, unknown> | undefined, { request: IncomingMessage }>(
    {
      // Browsers cannot set headers on a WebSocket, so the token comes in connection_init's payload
      // ({ token } or { Authorization: 'Bearer …' }); a header on the upgrade request also counts.
      onConnect: (ctx) => {
        const p = ctx.connectionParams ?? {};
        const presented =
          (typeof p.token === 'string' ? p.token : undefined) ??
          bearer(typeof p.Authorization === 'string' ? p.Authorization : typeof p.authorization === 'string' ? p.authorization : undefined) ??
          bearer(ctx.extra.request.headers.authorization);
        if (!authorized(presented)) {
          rejected(1, { reason: 'unauthenticated' });
          return false; // graphql-ws closes with 4403 Forbidden
        }
        return true;
      },
      // yoga's envelop gives the same schema, plugins (limits, metrics) and context as HTTP.
      onSubscribe: async (ctx, _id, payload) => {
        const open = perConnection.get(ctx) ?? 0;
        if (open >= maxPerConnection) {
          rejected(1, { reason: 'too_many_subscriptions' });
          return [
            new GraphQLError(`a connection may have at most ${maxPerConnection} subscriptions open; complete some first`, {
              extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' },
            }),
          ];
        }
        const {
          schema,
          execute,
          subscribe,
          contextFactory,
          parse: envParse,
          validate,
        } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
        });
        let document: ReturnType<typeof envParse>;
        try {
          document = envParse(payload.query);
        } catch (err) {
          return [err instanceof GraphQLError ? err : new GraphQLError('could not parse the query')];
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        perConnection.set(ctx, open + 1);
        return {
          schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
      },
      onComplete: (ctx: WsContext) => {
        perConnection.set(ctx, Math.max(0, (perConnection.get(ctx) ?? 1) - 1));
      },
      execute: (args) => (args.rootValue as { execute: typeof graphqlExecute }).execute(args),
      subscribe: (args) => (args.rootValue as { subscribe: typeof graphqlSubscribe }).subscribe(args),
    },
    wss,
  );

  await new Promise<void>((resolve, reject) => {
    // One line for the usual failures (main prints the message), not the system call's wording.
    const failed = (err: NodeJS.ErrnoException) => {
      const at = `${host}:${opts.port ?? DEFAULT_PORT}`;
      if (err.code === 'EADDRINUSE')
        reject(new Error(`cannot listen on ${at}: the port is in use (another flowlens?): choose one with --port (FLOWLENS_PORT)`));
      else if (err.code === 'EACCES') reject(new Error(`cannot listen on ${at}: permission denied (ports below 1024 need privileges): choose one with --port`));
      else if (err.code === 'EADDRNOTAVAIL') reject(new Error(`cannot listen on ${at}: no such address on this machine (--host)`));
      else reject(err);
    };
    server.once('error', failed);
    server.listen(opts.port ?? DEFAULT_PORT, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${urlHost}:${port}${GRAPHQL_PATH}`;

  if (!isLoopback(host) && !opts.token) {
    const line = '!'.repeat(78);
    logger.warn(
      `${line}\nflowlens serve listens on ${host}, reachable from other machines, WITHOUT a token (--insecure-no-token):\nanyone who can connect can read all traffic data and import captures.\nSet --token or FLOWLENS_TOKEN, or listen on 127.0.0.1.\n${line}`,
    );
  }

  return {
    url,
    webUrl: webRoot ? `http://${urlHost}:${port}/` : null,
    host,
    port,
    metrics,
    imports,
    close: async () => {
      await imports.close();
      await wsServer.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await yoga.dispose();
    },
  };
}
