// The API server: graphql-yoga over node:http at /graphql (queries, mutations incl. multipart
// uploads, subscriptions over SSE), graphql-ws on the same path for WebSocket subscriptions,
// /health and /metrics. The store and bus are the caller's: the server never closes them.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GraphQLError, getOperationAST, type execute as graphqlExecute, type subscribe as graphqlSubscribe } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { createYoga, maskError as yogaMaskError, type Plugin } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { Logger } from 'pino';
import type { EventBus } from '../bus/types.js';
import type { AggregatorOptions } from '../flow/aggregator.js';
import { StoreQueryError, type FlowStore } from '../store/types.js';
import { UPLOAD_HEADER } from './client.js';
import type { ApiContext } from './context.js';
import { ImportManager } from './imports.js';
import { DEFAULT_LIMITS, useOperationLimits, type OperationLimits } from './limits.js';
import { Metrics } from './metrics.js';
import { buildSchema } from './schema/index.js';
import { NO_LIVE_CAPTURE, type StatusProvider } from './status.js';
import { defaultWebRoot, serveWebClient } from './web-client.js';

export const GRAPHQL_PATH = '/graphql';
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 4000;
/** Multipart uploads are held in memory by the parser, so their size is capped. */
export const DEFAULT_MAX_UPLOAD_BYTES = 512 * 1024 * 1024;

export interface ApiServerOptions {
  store: FlowStore;
  bus: EventBus;
  logger: Logger;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** When set, every request to /graphql and /metrics and every WebSocket connection must present it. */
  token?: string;
  /** Origins allowed cross-origin (CORS); none when empty. '*' allows any. */
  corsOrigins?: string[];
  status?: StatusProvider;
  limits?: Partial<OperationLimits>;
  /** Aggregation settings for imports through the server (and the traffic step unit). */
  flow?: Partial<Omit<AggregatorOptions, 'bus' | 'iface'>>;
  maxUploadBytes?: number;
  /** Directory of the built web client served at `/` (default: dist/web when built); null: none. */
  webRoot?: string | null;
}

export interface ApiServer {
  url: string;
  host: string;
  port: number;
  metrics: Metrics;
  imports: ImportManager;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
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

export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const logger = opts.logger;
  const host = opts.host ?? DEFAULT_HOST;
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const maxUpload = opts.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  const authorized = tokenChecker(opts.token);
  const metrics = new Metrics();
  const webRoot = opts.webRoot === null ? undefined : (opts.webRoot ?? defaultWebRoot());

  const operations = metrics.counter('flowlens_graphql_operations_total', 'GraphQL operations executed, by type');
  const rejected = metrics.counter('flowlens_http_rejected_total', 'Requests refused before GraphQL, by reason');
  const dropped = metrics.counter('flowlens_subscription_events_dropped_total', 'Events a slow subscriber did not get, by topic');
  const subscriptions = metrics.gauge('flowlens_subscriptions_active', 'Subscriptions open now, by field');
  const wsConnections = metrics.gauge('flowlens_websocket_connections', 'WebSocket connections open now');
  wsConnections.set(0);
  metrics.gauge('flowlens_store_up', 'Store health check result (1 ok, 0 failing), at scrape time', async () => ((await opts.store.health()).ok ? 1 : 0));
  metrics.gauge('flowlens_store_spooled_batches', 'Batches waiting in the store outage spool', async () => (await opts.store.health()).spooled ?? 0);
  const started = Date.now();
  metrics.gauge('flowlens_uptime_seconds', 'Seconds since the server started', () => Math.round((Date.now() - started) / 1000));

  const imports = new ImportManager({
    store: opts.store,
    bus: opts.bus,
    metrics,
    flow: opts.flow ?? {},
    onWarning: (message) => logger.warn(message),
  });

  const context: ApiContext = {
    store: opts.store,
    bus: opts.bus,
    imports,
    metrics,
    status: opts.status ?? NO_LIVE_CAPTURE,
    intervalUs: (opts.flow?.intervalSec ?? 60) * 1_000_000,
    startedAt: started * 1000,
    dropped: (topic) => dropped(1, { topic }),
    subscriptionOpened: (field) => {
      subscriptions.add(1, { field });
      let open = true;
      return () => {
        if (open) subscriptions.add(-1, { field });
        open = false;
      };
    },
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
    context: () => context,
    landingPage: false,
    graphiql: { title: 'flowlens' },
    cors: opts.corsOrigins?.length
      ? { origin: opts.corsOrigins, credentials: false, allowedHeaders: ['content-type', 'authorization', UPLOAD_HEADER], methods: ['GET', 'POST', 'OPTIONS'] }
      : false,
    maskedErrors: {
      isDev: false,
      maskError: (error, message) => {
        const original = error instanceof GraphQLError ? error.originalError : error;
        // The store rejects bad arguments with a message meant for the caller (bad cursor, range).
        if (original instanceof StoreQueryError) return new GraphQLError(original.message, { extensions: { code: 'BAD_USER_INPUT' } });
        const masked = yogaMaskError(error, message, false);
        if (masked !== error) logger.error({ err: original }, 'GraphQL resolver failed');
        return masked;
      },
    },
    logging: {
      debug: (...a: unknown[]) => logger.debug(a.map(String).join(' ')),
      info: (...a: unknown[]) => logger.debug(a.map(String).join(' ')),
      warn: (...a: unknown[]) => logger.warn(a.map(String).join(' ')),
      error: (...a: unknown[]) => logger.error(a.map(String).join(' ')),
    },
    plugins: [useOperationLimits(limits), countOperations],
  });

  const refuse = (res: ServerResponse, status: number, reason: string, message: string, headers: Record<string, string> = {}) => {
    rejected(1, { reason });
    sendJson(res, status, { errors: [{ message, extensions: { code: reason.toUpperCase() } }] }, headers);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/health') {
      const h = await opts.store.health();
      // No details here: /health answers without a token, and details name files and hosts.
      sendJson(res, h.ok ? 200 : 503, { status: h.ok ? 'ok' : 'degraded', store: { backend: h.backend, ok: h.ok } });
      return;
    }
    const guarded = path === GRAPHQL_PATH || path === '/metrics';
    // CORS preflights carry no credentials by design; yoga answers them.
    if (guarded && req.method !== 'OPTIONS' && !authorized(bearer(req.headers.authorization))) {
      refuse(res, 401, 'unauthenticated', 'missing or wrong bearer token (Authorization: Bearer <token>)', { 'www-authenticate': 'Bearer realm="flowlens"' });
      return;
    }
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(await metrics.render());
      return;
    }
    if (path === GRAPHQL_PATH && req.method === 'POST' && /^multipart\/form-data/i.test(req.headers['content-type'] ?? '')) {
      if (req.headers[UPLOAD_HEADER] === undefined) {
        refuse(res, 400, 'bad_request', `multipart requests must carry the ${UPLOAD_HEADER} header`);
        return;
      }
      const length = Number(req.headers['content-length']);
      if (!Number.isFinite(length)) {
        refuse(res, 411, 'length_required', 'multipart uploads need a Content-Length');
        return;
      }
      if (length > maxUpload) {
        refuse(res, 413, 'too_large', `upload of ${length} bytes exceeds the limit of ${maxUpload} bytes`, { connection: 'close' });
        return;
      }
    }
    if (path !== GRAPHQL_PATH && (await serveWebClient(webRoot, req, res, path))) return;
    await yoga(req, res);
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

  const wss = new WebSocketServer({ server, path: GRAPHQL_PATH, maxPayload: 1024 * 1024 });
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
        return {
          schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
      },
      execute: (args) => (args.rootValue as { execute: typeof graphqlExecute }).execute(args),
      subscribe: (args) => (args.rootValue as { subscribe: typeof graphqlSubscribe }).subscribe(args),
    },
    wss,
  );

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? DEFAULT_PORT, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${urlHost}:${port}${GRAPHQL_PATH}`;

  if (!isLoopback(host) && !opts.token) {
    const line = '!'.repeat(78);
    logger.warn(
      `${line}\nflowlens serve listens on ${host}, reachable from other machines, WITHOUT a token:\nanyone who can connect can read all traffic data and import captures.\nSet --token or FLOWLENS_TOKEN, or listen on 127.0.0.1.\n${line}`,
    );
  }

  return {
    url,
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
