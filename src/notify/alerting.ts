// The alerting of a serving process, between the bus and people: the alert engine (user rules and
// watchlists over the bus's flow events; its RULE and WATCHLIST anomalies go on the bus, like the
// detectors', and into the store) and the notifier (every anomaly event on the bus, routed to the
// channels of --notify-config). Either part runs only when its flags are given.
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { Logger } from 'pino';
import { AlertEngine } from '../alert/engine.js';
import type { Metrics } from '../api/metrics.js';
import type { EventBus } from '../bus/types.js';
import type { AnomalyRecord } from '../records/index.js';
import type { StoreWriter } from '../store/types.js';
import { loadNotifyConfig, type NotifyConfig } from './config.js';
import { attachNotifier, detachNotifier, Notifier } from './notifier.js';

/** How often the engine's anomalies are written to the store (the latest version of each). */
const STORE_EVERY_MS = 1000;

export interface AlertingSettings {
  rulesFile?: string;
  watchlistFiles: string[];
  notify?: NotifyConfig;
  /** How often rule and list files are polled for changes (ms). */
  pollMs: number;
}

function notifyConfigFile(path: string): NotifyConfig {
  try {
    return loadNotifyConfig(path);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function fileList(value: string, previous: string[] | undefined): string[] {
  const files = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (files.length === 0) throw new InvalidArgumentError('must name at least one file.');
  return [...(previous ?? []), ...files];
}

export function addAlertingOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--rules <file>', 'alert rules over flows (reloaded on change); see "Alert rules" in the README').env('FLOWLENS_RULES'))
    .addOption(
      new Option('--watchlist <files>', 'watchlist files of addresses, CIDRs, domains and JA4 fingerprints (comma-separated or repeated; reloaded on change)')
        .env('FLOWLENS_WATCHLIST')
        .argParser(fileList),
    )
    .addOption(
      new Option('--notify-config <file>', 'notification channels and routes (JSON); anomalies are sent to the channels they are routed to')
        .env('FLOWLENS_NOTIFY_CONFIG')
        .argParser(notifyConfigFile),
    );
}

export function alertingSettingsFrom(o: Record<string, unknown>): AlertingSettings {
  return {
    rulesFile: (o.rules as string | undefined) || undefined,
    watchlistFiles: (o.watchlist as string[] | undefined) ?? [],
    notify: o.notifyConfig as NotifyConfig | undefined,
    pollMs: 1000,
  };
}

/** True when any part of alerting was asked for (a process then needs a bus even without NATS). */
export function alertingConfigured(s: AlertingSettings): boolean {
  return s.rulesFile !== undefined || s.watchlistFiles.length > 0 || s.notify !== undefined;
}

export class Alerting {
  readonly engine: AlertEngine | null;
  readonly notifier: Notifier | null;
  private readonly unsubscribe: (() => void)[] = [];
  private pending = new Map<string, AnomalyRecord>();
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();

  /** Loads the rule and list files (a bad one throws: one error naming file, line and reason). */
  constructor(
    settings: AlertingSettings,
    private readonly deps: { bus: EventBus; store: StoreWriter | null; logger: Logger },
  ) {
    const { bus, logger } = deps;
    this.engine =
      settings.rulesFile || settings.watchlistFiles.length > 0
        ? new AlertEngine({
            rulesFile: settings.rulesFile,
            watchlistFiles: settings.watchlistFiles,
            pollMs: settings.pollMs,
            sink: (type, record) => {
              this.pending.set(record.anomalyId, { ...record });
              bus.publish('anomaly', { type, anomaly: { ...record } });
            },
            onReload: (file, err) => {
              if (err) logger.error({ file, err: err.message }, 'alert file refused; the previous version stays in force');
              else logger.info({ file }, 'alert file reloaded');
            },
          })
        : null;
    this.notifier = settings.notify ? new Notifier(settings.notify, logger) : null;
  }

  start(): this {
    const { bus } = this.deps;
    if (this.notifier) {
      const notifier = this.notifier.start();
      this.unsubscribe.push(bus.subscribe('anomaly', (e) => notifier.anomaly(e)));
      // The API (src/api/schema/notifications.ts) finds it through the bus it shares.
      attachNotifier(bus, notifier);
      this.unsubscribe.push(() => detachNotifier(bus, notifier));
    }
    if (this.engine) {
      const engine = this.engine.start();
      this.unsubscribe.push(bus.subscribe('flow', (e) => engine.flow(e)));
      this.timer = setInterval(() => this.store(), STORE_EVERY_MS);
      this.timer.unref();
    }
    return this;
  }

  /**
   * The store the engine's anomalies go to, when it opens after the alerting started (a live
   * capture subscribes first, so that its workers publish flow events from the first packet on).
   */
  attachStore(store: StoreWriter): void {
    this.deps.store = store;
  }

  /** Notification metrics per channel, read at scrape time. */
  registerMetrics(metrics: Metrics): void {
    const notifier = this.notifier;
    if (notifier) {
      const per = (pick: (c: ReturnType<Notifier['channels']>[number]) => number) => () =>
        notifier.channels().map((c) => ({ labels: { channel: c.name, type: c.type }, value: pick(c) }));
      metrics.counterFrom(
        'flowlens_notifications_sent_total',
        'Notifications their receiver accepted, by channel',
        per((c) => c.sent),
      );
      metrics.counterFrom(
        'flowlens_notifications_failed_total',
        'Notification deliveries that failed (each retry counts), by channel',
        per((c) => c.failed),
      );
      metrics.gaugeFrom(
        'flowlens_notifications_queued',
        'Notifications waiting in the outbox, by channel',
        per((c) => c.queued),
      );
    }
    const engine = this.engine;
    if (engine) {
      metrics.counterFrom('flowlens_alert_anomalies_started_total', 'RULE and WATCHLIST anomalies started, by kind', () =>
        Object.entries(engine.started).map(([kind, value]) => ({ labels: { kind }, value })),
      );
    }
  }

  /** Writes the engine's anomalies' latest versions to the store. */
  private store(): Promise<void> {
    const store = this.deps.store;
    if (!store || this.pending.size === 0) return this.writing;
    const anomalies = [...this.pending.values()];
    this.pending = new Map();
    this.writing = this.writing
      .then(async () => {
        await store.write({ flows: [], hosts: [], traffic: [], anomalies });
        await store.flush();
      })
      .catch((err: Error) => this.deps.logger.error({ err: err.message, anomalies: anomalies.length }, 'alert anomalies not stored'));
    return this.writing;
  }

  /** Ends the engine's anomalies (stored, notified as resolved when the notifier is still up), stops. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.engine?.close();
    await this.store();
    for (const u of this.unsubscribe) u();
    await this.notifier?.close();
  }
}
