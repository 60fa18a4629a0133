// `flowlens serve`: the GraphQL API over the store. The server opens the store read-write and is
// its one writer (a DuckDB file allows one writer process), so imports into a running server go
// through it: `flowlens import FILE --server URL`.
import { Option, type Command } from 'commander';
import { MemoryBus } from '../bus/memory.js';
import { NatsBus } from '../bus/nats.js';
import { DEFAULT_HOST, DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_PORT, startApiServer, type ApiServerOptions } from '../api/server.js';
import { DEFAULT_LIMITS } from '../api/limits.js';
import { openStore, type StoreOptions } from '../store/index.js';
import { programLogger } from './logger.js';
import { addBusOptions, busSettingsFrom } from './bus-options.js';
import { addFlowOptions, addStoreOptions, aggregatorSettings, flowOptionsFrom, positiveInteger, positiveNumber } from './options.js';

function portNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`port must be from 0 to 65535; got ${value}`);
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
      new Option('--query-timeout <seconds>', 'queries running longer get an error')
        .env('FLOWLENS_QUERY_TIMEOUT')
        .argParser(positiveNumber)
        .default(DEFAULT_LIMITS.queryTimeoutMs / 1000),
    );
}

/** startApiServer's settings from the flags of addApiOptions(). */
export function apiServerSettings(o: Record<string, unknown>): Pick<ApiServerOptions, 'host' | 'port' | 'token' | 'corsOrigins' | 'maxUploadBytes' | 'limits'> {
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
  };
}

export function addServeCommand(program: Command, storeOptionsFrom: (o: Record<string, unknown>) => StoreOptions): Command {
  const cmd = program.command('serve').description('serve the GraphQL API (queries, subscriptions, uploads) at http://HOST:PORT/graphql');
  addApiOptions(cmd);
  addBusOptions(cmd, "subscribe to a fleet's live events on NATS, e.g. nats://127.0.0.1:4222 or tls://nats.example:4222");
  addStoreOptions(cmd);
  addFlowOptions(cmd);
  cmd.action(async (o: Record<string, unknown>) => {
    const logger = programLogger(program);
    const flow = flowOptionsFrom(o);
    const store = await openStore(storeOptionsFrom(o));
    // A fleet: the capture nodes' events (and their status heartbeats) come over NATS.
    const busSettings = busSettingsFrom(o);
    const bus = busSettings ? new NatsBus({ ...busSettings, node: flow.node || 'serve', logger }) : new MemoryBus();
    let server: Awaited<ReturnType<typeof startApiServer>>;
    try {
      server = await startApiServer({
        store,
        bus,
        logger,
        ...apiServerSettings(o),
        flow: aggregatorSettings(flow),
        status: bus instanceof NatsBus ? bus.fleetStatus() : undefined,
      });
    } catch (err) {
      await bus.close();
      await store.close();
      throw err;
    }
    logger.info({ url: server.url, store: store.backend }, `flowlens API at ${server.url}`);
    // Run until Ctrl-C or SIGTERM, then stop imports (they keep what they decoded) and close.
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    logger.info('shutting down');
    await server.close();
    await bus.close();
    await store.close();
  });
  return cmd;
}
