// `flowlens capture -i IFACE ...` (live capture into the store, optionally publishing to a NATS
// fleet bus) and `flowlens` with no sub-command: capture on the default interface plus the API,
// embedded store, one process.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Option, type Command } from 'commander';
import type { EventBus } from '../bus/types.js';
import { MemoryBus } from '../bus/memory.js';
import { NatsBus } from '../bus/nats.js';
import { CaptureOpenError, LiveCapture, RING_MB_MIN, RING_MB_TOTAL, defaultWorkerCount, type LiveCaptureSummary } from '../capture/live.js';
import { openStore, type StoreOptions } from '../store/index.js';
import type { FlowStore } from '../store/types.js';
import { startApiServer } from '../api/server.js';
import { Metrics } from '../api/metrics.js';
import {
  registerCaptureMetrics,
  registerStoreHealthMetrics,
  checkMetricsListen,
  startMetricsListener,
  StoreWriteTimes,
  type MetricsListener,
} from './capture-metrics.js';
import { programLogger, type Logger } from './logger.js';
import { addBusOptions, busSettingsFrom, type BusSettings } from './bus-options.js';
import { addApiOptions, apiServerSettings, logWebClient } from './serve-command.js';
import { Alerting, addAlertingOptions, type AlertingSettings, alertingConfigured, alertingSettingsFrom } from '../notify/alerting.js';
import { addKeepPacketsOptions, keepPacketsFrom } from './pcap-command.js';
import type { KeepPacketsOptions } from '../packets/keeper.js';
import {
  addFlowOptions,
  addNegatableOption,
  addStoreOptions,
  aggregatorSettings,
  flowOptionsFrom,
  positiveInteger,
  positiveNumber,
  type FlowOptions,
} from './options.js';

/** Status heartbeats on the fleet bus. */
const HEARTBEAT_MS = 5000;

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function addCaptureOptions(cmd: Command, iface: 'required' | 'default-route'): Command {
  cmd
    .addOption(
      new Option(
        '-i, --interface <name>',
        iface === 'required'
          ? 'interface to capture on (repeat for several)'
          : 'interface to capture on (repeat for several; default: the one with the default route)',
      )
        .env('FLOWLENS_INTERFACE')
        .argParser(collect),
    )
    .addOption(new Option('-f, --filter <bpf>', "BPF capture filter (pcap-filter(7)), applied in the kernel, e.g. 'tcp or udp'").env('FLOWLENS_FILTER'))
    .addOption(new Option('--snaplen <bytes>', 'bytes captured of each frame').env('FLOWLENS_SNAPLEN').argParser(positiveInteger).default(262144));
  addNegatableOption(cmd, '--no-promisc', 'do not put the interfaces into promiscuous mode', 'FLOWLENS_PROMISC');
  cmd
    .addOption(new Option('--buffer-mb <mb>', 'kernel capture buffer per interface').env('FLOWLENS_BUFFER_MB').argParser(positiveNumber).default(16))
    .addOption(new Option('--workers <n>', 'decode worker threads').env('FLOWLENS_WORKERS').argParser(positiveInteger).default(defaultWorkerCount()))
    .addOption(
      new Option('--batch-rows <n>', 'records per store write, and at most per message from a decode worker')
        .env('FLOWLENS_BATCH_ROWS')
        .argParser(positiveInteger)
        .default(5000),
    );
  addBusOptions(cmd, 'publish live events to NATS, e.g. nats://127.0.0.1:4222 or tls://nats.example:4222 (a fleet)');
  addKeepPacketsOptions(cmd);
  addAlertingOptions(cmd);
  return cmd
    .addOption(new Option('--duration <seconds>', 'stop after this long').env('FLOWLENS_DURATION').argParser(positiveNumber))
    .addOption(
      new Option(
        '--ring-mb <mb>',
        `ring between the capture and each decode worker: holds the backlog while a worker falls behind, as in its first second on a busy link (default: ${RING_MB_TOTAL} over the workers, at least ${RING_MB_MIN} each)`,
      )
        .env('FLOWLENS_RING_MB')
        .argParser(positiveNumber),
    );
}

interface CaptureSettings extends FlowOptions, StoreOptions {
  interfaces: string[];
  filter?: string;
  snaplen: number;
  promisc: boolean;
  bufferMb: number;
  workers: number;
  batchRows: number;
  ringMb: number | undefined;
  bus?: BusSettings;
  duration?: number;
  keepPackets?: KeepPacketsOptions;
  alerting: AlertingSettings;
}

function captureSettingsFrom(o: Record<string, unknown>, storeOptionsFrom: (o: Record<string, unknown>) => StoreOptions): CaptureSettings {
  const flow = flowOptionsFrom(o);
  // A fleet tells its nodes apart by name: default to the host name there.
  if (o.bus && !flow.node) flow.node = hostname();
  return {
    ...storeOptionsFrom(o),
    ...flow,
    interfaces: (o.interface as string[] | undefined) ?? [],
    filter: (o.filter as string | undefined) || undefined,
    snaplen: o.snaplen as number,
    promisc: o.promisc as boolean,
    bufferMb: o.bufferMb as number,
    workers: o.workers as number,
    batchRows: o.batchRows as number,
    ringMb: o.ringMb as number | undefined,
    bus: busSettingsFrom(o),
    duration: o.duration as number | undefined,
    keepPackets: keepPacketsFrom(o),
    alerting: alertingSettingsFrom(o),
  };
}

/** The interface of the default route (lowest metric) from /proc/net/route; null when there is none. */
export function defaultRouteInterface(routes = '/proc/net/route'): string | null {
  let text: string;
  try {
    text = readFileSync(routes, 'utf8');
  } catch {
    return null;
  }
  let best: { iface: string; metric: number } | null = null;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dest, , flags, , , metric, mask] = f;
    // RTF_UP (0x1), destination 0.0.0.0/0
    if (dest !== '00000000' || mask !== '00000000' || (parseInt(flags, 16) & 1) === 0) continue;
    const m = Number(metric);
    if (!best || m < best.metric) best = { iface, metric: m };
  }
  return best?.iface ?? null;
}

/** Waits for SIGINT/SIGTERM (or the duration); a second signal leaves at once. */
function untilStopped(logger: Logger, durationSec: number | undefined, fatal: Promise<Error>): Promise<string> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (sig: string) => {
      if (stopping) {
        logger.warn(`${sig} again: leaving without writing the rest`);
        process.exit(130);
      }
      stopping = true;
      logger.info(`${sig}: ending every flow and writing it (${sig} again to quit at once)`);
      resolve(sig);
    };
    process.on('SIGINT', () => onSignal('SIGINT'));
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    if (durationSec) setTimeout(() => onSignal('duration'), durationSec * 1000).unref();
    void fatal.then(() => onSignal('fatal error'));
  });
}

function openBus(s: CaptureSettings, logger: Logger): EventBus | undefined {
  if (!s.bus) return undefined;
  return new NatsBus({ ...s.bus, node: s.node, logger });
}

function startCapture(s: CaptureSettings, store: FlowStore, bus: EventBus | undefined, logger: Logger, onFatal: (err: Error) => void): Promise<LiveCapture> {
  return LiveCapture.start({
    interfaces: s.interfaces,
    filter: s.filter,
    snaplen: s.snaplen,
    promiscuous: s.promisc,
    bufferMb: s.bufferMb,
    workers: s.workers,
    batchRows: s.batchRows,
    ringMb: s.ringMb,
    store,
    bus,
    logger,
    ...aggregatorSettings(s),
    onFatal,
    keepPackets: s.keepPackets,
  });
}

/** Publishes this node's interface counters on the fleet bus. */
function heartbeat(capture: LiveCapture, bus: EventBus | undefined): () => void {
  if (!(bus instanceof NatsBus)) return () => {};
  const send = () => {
    const st = capture.status();
    bus.publishStatus({
      node: st.node,
      ts: Date.now() * 1000,
      interfaces: st.interfaces.map((i) => ({ name: i.name, node: i.node, packets: i.packets, drops: i.drops })),
    });
  };
  send();
  const t = setInterval(send, HEARTBEAT_MS);
  t.unref();
  return () => clearInterval(t);
}

function report(summary: LiveCaptureSummary, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  const n = (x: number) => x.toLocaleString('en-US');
  const lines = [
    `captured for ${summary.seconds.toFixed(1)} s with ${summary.workers} decode worker${summary.workers === 1 ? '' : 's'}`,
    `  packets    ${n(summary.packets)} (${n(summary.bytes)} bytes)`,
    `  flows      ${n(summary.flows)}`,
    `  non-IP     ${n(summary.nonIp)}`,
    `  malformed  ${n(summary.malformed)}`,
    `  dropped    ${n(summary.drops)}`,
    // How close the decode workers came to dropping (100%: a ring was full).
    `  ring peak  ${summary.ringPeakFill.map((f) => `${Math.round(f * 100)}%`).join(', ')} of each decode worker's ring`,
  ];
  // Only when a table reached its cap: a flood, or caps too small for the traffic.
  if (summary.evictedFlows + summary.evictedHosts > 0)
    lines.push(`  evicted    ${n(summary.evictedFlows)} flows, ${n(summary.evictedHosts)} hosts (tables at their caps)`);
  const ps = summary.packetStore;
  if (ps) {
    lines.push(
      `  kept       ${n(ps.kept)} packets (${n(ps.bytes)} bytes) in ${n(ps.files)} files; dropped by the packet store ${n(ps.dropped)}, first-packets cap ${n(ps.skipped)}, evicted files ${n(ps.evictedFiles)}`,
    );
  }
  for (const i of summary.interfaces) {
    lines.push(
      `    ${i.name.padEnd(16)} received ${n(i.packets)}, dropped: kernel ${n(i.kernelDrops)}, interface ${n(i.ifDrops)}, decode ring ${n(i.ringDrops)}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

export function addCaptureCommand(program: Command, storeOptionsFrom: (o: Record<string, unknown>) => StoreOptions): Command {
  const cmd = program
    .command('capture')
    .description('capture live from network interfaces into the store (Ctrl-C ends every flow and writes it)')
    .option('--json', 'print the summary as one JSON object on stdout');
  addCaptureOptions(cmd, 'required');
  cmd
    .addOption(
      new Option('--metrics-listen <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics and /health, e.g. 127.0.0.1:9464').env(
        'FLOWLENS_METRICS_LISTEN',
      ),
    )
    .addOption(new Option('--metrics-token <token>', 'bearer token required by /metrics (needed beyond loopback)').env('FLOWLENS_METRICS_TOKEN'));
  addStoreOptions(cmd);
  addFlowOptions(cmd);
  cmd.action(async (o: Record<string, unknown>) => {
    const s = captureSettingsFrom(o, storeOptionsFrom);
    const listen = o.metricsListen as string | undefined;
    const metricsAt = listen ? { listen, token: (o.metricsToken as string | undefined) || undefined } : undefined;
    if (metricsAt) {
      // A bad address or a missing token is refused before the capture opens anything.
      try {
        checkMetricsListen(metricsAt.listen, metricsAt.token);
      } catch (err) {
        process.stderr.write(`flowlens: ${(err as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
    }
    if (s.interfaces.length === 0) {
      const hint = defaultRouteInterface();
      process.stderr.write(`flowlens: capture needs an interface: -i IFACE${hint ? ` (the default route's is ${hint})` : ''}\n`);
      process.exitCode = 2;
      return;
    }
    process.exitCode = await runCapture(s, programLogger(program), Boolean(o.json), metricsAt);
  });
  return cmd;
}

/** Where `capture --metrics-listen` serves /metrics, and the token it asks for. */
interface MetricsAt {
  listen: string;
  token: string | undefined;
}

interface Running {
  store: FlowStore;
  bus: EventBus | undefined;
  capture: LiveCapture;
  /** Resolves when a worker dies. */
  fatal: Promise<Error>;
}

/** Opens the store, the bus and the capture; on a capture error prints one line and returns the exit code. */
async function openAll(s: CaptureSettings, logger: Logger, bus: EventBus | undefined, writeTimes: StoreWriteTimes): Promise<Running | number> {
  const store = await openStore({ ...s, log: logger });
  let fail: (err: Error) => void = () => {};
  const fatal = new Promise<Error>((resolve) => (fail = resolve));
  try {
    const capture = await startCapture(s, writeTimes.wrap(store), bus, logger, fail);
    return { store, bus, capture, fatal };
  } catch (err) {
    await bus?.close();
    await store.close();
    if (!(err instanceof CaptureOpenError)) throw err;
    process.stderr.write(`flowlens: ${err.message}\n`);
    return err.kind === 'permission' ? 77 : 1;
  }
}

/**
 * Rules, watchlists and notifications on the capture's bus, started before the capture so that the
 * decode workers publish flow events from the first packet on. A bad file: one line, exit code 2.
 */
function startAlerting(s: CaptureSettings, bus: EventBus | undefined, logger: Logger): Alerting | undefined | number {
  if (!bus || !alertingConfigured(s.alerting)) return undefined;
  try {
    return new Alerting(s.alerting, { bus, store: null, logger }).start();
  } catch (err) {
    process.stderr.write(`flowlens: ${(err as Error).message}\n`);
    return 2;
  }
}

async function runCapture(s: CaptureSettings, logger: Logger, json: boolean, metricsAt: MetricsAt | undefined): Promise<number> {
  const writeTimes = new StoreWriteTimes();
  // Alerting follows the bus's events: an in-process bus when there is no fleet bus.
  const bus = openBus(s, logger) ?? (alertingConfigured(s.alerting) ? new MemoryBus() : undefined);
  const alerting = startAlerting(s, bus, logger);
  if (typeof alerting === 'number') {
    await bus?.close();
    return alerting;
  }
  const r = await openAll(s, logger, bus, writeTimes);
  if (typeof r === 'number') {
    await alerting?.close();
    return r;
  }
  alerting?.attachStore(r.store);
  let listener: MetricsListener | undefined;
  if (metricsAt) {
    const metrics = new Metrics();
    registerCaptureMetrics(metrics, r.capture);
    registerStoreHealthMetrics(metrics, r.store);
    writeTimes.register(metrics);
    alerting?.registerMetrics(metrics);
    try {
      listener = await startMetricsListener(metricsAt.listen, metricsAt.token, metrics, r.store);
    } catch (err) {
      process.stderr.write(`flowlens: ${(err as Error).message}\n`);
      await r.capture.stop();
      await alerting?.close();
      await r.bus?.close();
      await r.store.close();
      return 2;
    }
    logger.info({ metrics: listener.url }, `flowlens: metrics at ${listener.url}`);
  }
  const stopHeartbeat = heartbeat(r.capture, r.bus);
  const why = await untilStopped(logger, s.duration, r.fatal);
  stopHeartbeat();
  const summary = await r.capture.stop();
  // After the capture: its last anomalies' ends are notified (queued, sent at the next start if need be).
  await alerting?.close();
  await listener?.close();
  await r.bus?.close();
  await r.store.close();
  report(summary, json);
  if (r.capture.failedWrites > 0) {
    process.stderr.write(`flowlens: ${r.capture.failedWrites} store writes failed (see the log)\n`);
    return 1;
  }
  return why === 'fatal error' ? 1 : 0;
}

/**
 * `flowlens run`, also what `flowlens` alone does: capture on the default interface (or -i) and
 * serve the API from the same process and embedded store. The API server is the serve command's
 * own (src/api/server.ts). A default sub-command rather than options on the program itself, so
 * that the other commands' options stay theirs.
 */
export function addRunCommand(program: Command, storeOptionsFrom: (o: Record<string, unknown>) => StoreOptions): Command {
  const cmd = program
    .command('run', { isDefault: true })
    .description('capture on the default interface and serve the API in one process (the default command)');
  addCaptureOptions(cmd, 'default-route');
  addApiOptions(cmd);
  addStoreOptions(cmd);
  addFlowOptions(cmd);
  cmd.action(async (o: Record<string, unknown>) => {
    const s = captureSettingsFrom(o, storeOptionsFrom);
    const iface = s.interfaces.length > 0 ? s.interfaces[0] : defaultRouteInterface();
    if (!iface) {
      process.stderr.write('flowlens: no default route to pick an interface from: pass -i IFACE\n');
      process.exitCode = 2;
      return;
    }
    if (s.interfaces.length === 0) s.interfaces = [iface];
    process.exitCode = await runAllInOne(s, o, programLogger(program));
  });
  return cmd;
}

async function runAllInOne(s: CaptureSettings, o: Record<string, unknown>, logger: Logger): Promise<number> {
  const writeTimes = new StoreWriteTimes();
  const openedBus = openBus(s, logger) ?? new MemoryBus();
  const alerting = startAlerting(s, openedBus, logger);
  if (typeof alerting === 'number') {
    await openedBus.close();
    return alerting;
  }
  const r = await openAll(s, logger, openedBus, writeTimes);
  if (typeof r === 'number') {
    await alerting?.close();
    return r;
  }
  const { store, capture } = r;
  const bus = r.bus!;
  alerting?.attachStore(store);
  let server: Awaited<ReturnType<typeof startApiServer>>;
  try {
    server = await startApiServer({
      store,
      bus,
      logger,
      ...apiServerSettings(o),
      status: capture.statusProvider(),
      flow: aggregatorSettings(s),
    });
  } catch (err) {
    await capture.stop();
    await alerting?.close();
    await bus.close();
    await store.close();
    throw err;
  }
  registerCaptureMetrics(server.metrics, capture);
  writeTimes.register(server.metrics);
  alerting?.registerMetrics(server.metrics);
  const stopHeartbeat = heartbeat(capture, bus);
  logger.info({ url: server.url, interfaces: s.interfaces, store: store.backend }, `flowlens: capturing on ${s.interfaces.join(', ')}, API at ${server.url}`);
  logWebClient(logger, server);
  const why = await untilStopped(logger, s.duration, r.fatal);
  stopHeartbeat();
  const summary = await capture.stop();
  await server.close();
  await alerting?.close();
  await bus.close();
  await store.close();
  logger.info({ packets: summary.packets, flows: summary.flows, drops: summary.drops }, 'stopped');
  return why === 'fatal error' || capture.failedWrites > 0 ? 1 : 0;
}
