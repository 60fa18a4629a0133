// `flowlens serve`: the GraphQL API over the store. The server opens the store read-write and is
// its one writer (a DuckDB file allows one writer process), so imports into a running server go
// through it: `flowlens import FILE --server URL`.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { MemoryBus } from '../bus/memory.js';
import { NatsBus } from '../bus/nats.js';
import {
  DEFAULT_HOST,
  DEFAULT_MAX_SUBSCRIPTIONS,
  DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION,
  DEFAULT_MAX_UPLOAD_BYTES,
  DEFAULT_PORT,
  startApiServer,
  type ApiServerOptions,
} from '../api/server.js';
import { DEFAULT_LIMITS } from '../api/limits.js';
import { Alerting, addAlertingOptions, alertingSettingsFrom } from '../notify/alerting.js';
import { openStore, type StoreOptions } from '../store/index.js';
import { programLogger } from './logger.js';
import { packetsDirFrom } from './pcap-command.js';
import { addBusOptions, busSettingsFrom } from './bus-options.js';
import { addFlowOptions, addStoreOptions, aggregatorSettings, flowOptionsFrom, nonNegativeNumber, positiveInteger, positiveNumber } from './options.js';
import { DEFAULT_EXPLORE_CACHE_BYTES } from '../store/explore-segments.js';

function portNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`port must be from 0 to 65535; got ${value}`);
  return n;
}

/** The API server's flags: those of `serve`, and of `run`, which serves the same API. */
export function addApiOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--host <host>', 'address to listen on').env('FLOWLENS_HOST').default(DEFAULT_HOST))
    .addOption(new Option('--port <port>', 'port to listen on (0: any free port)').env('FLOWLENS_PORT').argParser(portNumber).default(DEFAULT_PORT))
    .addOption(new Option('--token <token>', 'bearer token required by /graphql, /metrics and WebSocket connections').env('FLOWLENS_TOKEN'))
    .addOption(new Option('--cors-origin <origins>', "comma-separated origins allowed cross-origin ('*' for any); none by default").env('FLOWLENS_CORS_ORIGIN'))
    .addOption(
      new Option('--max-upload-mb <mb>', 'largest capture upload accepted')
        .env('FLOWLENS_MAX_UPLOAD_MB')
        .argParser(positiveInteger)
        .default(DEFAULT_MAX_UPLOAD_BYTES / 1024 / 1024),
    )
    .addOption(
      new Option('--explore-cache-mb <mb>', "Explore's memory for a range's flow segments (DuckDB; 0: Explore by SQL only)")
        .env('FLOWLENS_EXPLORE_CACHE_MB')
        .argParser(nonNegativeNumber)
        .default(DEFAULT_EXPLORE_CACHE_BYTES / 1024 / 1024),
    )
    .addOption(
      new Option('--query-timeout <seconds>', 'queries running longer are stopped (in the store too) and get an error')
        .env('FLOWLENS_QUERY_TIMEOUT')
        .argParser(positiveNumber)
        .default(DEFAULT_LIMITS.queryTimeoutMs / 1000),
    )
    .addOption(
      new Option('--introspection <on|off>', 'answer GraphQL introspection (schema) queries; default: on without a token, off with one')
        .env('FLOWLENS_INTROSPECTION')
        .choices(['on', 'off']),
    )
    .addOption(
      new Option('--max-subscriptions <n>', 'live subscriptions open at once on the server (WebSocket and SSE)')
        .env('FLOWLENS_MAX_SUBSCRIPTIONS')
        .argParser(positiveInteger)
        .default(DEFAULT_MAX_SUBSCRIPTIONS),
    )
    .addOption(
      new Option('--max-subscriptions-per-connection <n>', 'operations open at once on one WebSocket')
        .env('FLOWLENS_MAX_SUBSCRIPTIONS_PER_CONNECTION')
        .argParser(positiveInteger)
        .default(DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION),
    )
    .addOption(
      new Option('--insecure-no-token', 'allow listening on an address other than loopback without --token (anyone who reaches it reads all data)').env(
        'FLOWLENS_INSECURE_NO_TOKEN',
      ),
    )
    .addOption(
      new Option('--packets-dir <dir>', 'the packet index that /pcap and pcapUrl serve packets from, default: "packets" beside --db').env(
        'FLOWLENS_PACKETS_DIR',
      ),
    );
}

/** startApiServer's settings from the flags of addApiOptions(). */
export function apiServerSettings(
  o: Record<string, unknown>,
): Pick<
  ApiServerOptions,
  | 'host'
  | 'port'
  | 'token'
  | 'corsOrigins'
  | 'maxUploadBytes'
  | 'limits'
  | 'introspection'
  | 'maxSubscriptions'
  | 'maxSubscriptionsPerConnection'
  | 'insecureNoToken'
  | 'packetsDir'
> {
  return {
    host: o.host as string,
    port: o.port as number,
    token: (o.token as string | undefined) || undefined,
    corsOrigins:
      typeof o.corsOrigin === 'string'
        ? o.corsOrigin
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : undefined,
    maxUploadBytes: (o.maxUploadMb as number) * 1024 * 1024,
    limits: { queryTimeoutMs: (o.queryTimeout as number) * 1000 },
    introspection: o.introspection === undefined ? undefined : o.introspection === 'on',
    maxSubscriptions: o.maxSubscriptions as number,
    maxSubscriptionsPerConnection: o.maxSubscriptionsPerConnection as number,
    insecureNoToken: o.insecureNoToken === true || o.insecureNoToken === 'true' || o.insecureNoToken === '1',
    packetsDir: packetsDirFrom(o),
  };
}

/** The web client's address on start (what a newcomer opens), or how to get one. */
export function logWebClient(logger: { info(o: object, m: string): void }, server: { webUrl: string | null }): void {
  if (server.webUrl) logger.info({ webUrl: server.webUrl }, `web client at ${server.webUrl}`);
  else logger.info({ webUrl: null }, 'no web client: it is not built (npm run build:web)');
}

export function addServeCommand(program: Command, storeOptionsFrom: (o: Record<string, unknown>) => StoreOptions): Command {
  const cmd = program.command('serve').description('serve the GraphQL API (queries, subscriptions, uploads) at http://HOST:PORT/graphql');
  addApiOptions(cmd);
  addBusOptions(cmd, "subscribe to a fleet's live events on NATS, e.g. nats://127.0.0.1:4222 or tls://nats.example:4222");
  addStoreOptions(cmd);
  addFlowOptions(cmd);
  addAlertingOptions(cmd);
  cmd.action(async (o: Record<string, unknown>) => {
    const logger = programLogger(program);
    const flow = flowOptionsFrom(o);
    const alertingSettings = alertingSettingsFrom(o);
    const store = await openStore({ ...storeOptionsFrom(o), log: logger });
    // A fleet: the capture nodes' events (and their status heartbeats) come over NATS.
    const busSettings = busSettingsFrom(o);
    const bus = busSettings ? new NatsBus({ ...busSettings, node: flow.node || 'serve', logger }) : new MemoryBus();
    let server: Awaited<ReturnType<typeof startApiServer>>;
    let alerting: Alerting | undefined;
    try {
      // Rules, watchlists and notifications; a bad rule or list file stops the start here.
      alerting = new Alerting(alertingSettings, { bus, store, logger }).start();
      server = await startApiServer({
        store,
        bus,
        logger,
        ...apiServerSettings(o),
        flow: aggregatorSettings(flow),
        status: bus instanceof NatsBus ? bus.fleetStatus() : undefined,
      });
      alerting.registerMetrics(server.metrics);
    } catch (err) {
      await alerting?.close();
      await bus.close();
      await store.close();
      throw err;
    }
    logger.info({ url: server.url, store: store.backend }, `flowlens API at ${server.url}`);
    logWebClient(logger, server);
    // Run until Ctrl-C or SIGTERM, then stop imports (they keep what they decoded) and close.
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    logger.info('shutting down');
    await server.close();
    await alerting?.close();
    await bus.close();
    await store.close();
  });
  return cmd;
}
