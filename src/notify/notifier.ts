// Between anomalies and people: follows the bus's anomaly events, routes each anomaly to channels
// (deny by default: no route, no notification), queues firing, repeat and resolved notifications
// in each channel's on-disk outbox, and delivers every outbox in order, grouped, rate-limited and
// retried with exponential back-off until its receiver takes it. Acknowledging an anomaly stops
// its repeats.
import { makeDirectory } from '../store/make-dir.js';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AnomalyEvent } from '../bus/types.js';
import type { AnomalyRecord } from '../records/index.js';
import { PrefixIndex, parsePrefix } from '../alert/ip-prefix.js';
import { createSender, type Sender } from './channels.js';
import type { ChannelConfig, NotifyConfig, Route } from './config.js';
import { type Notification, Outbox } from './outbox.js';

/** Anomalies followed at once (for repeats and resolution); the oldest ended ones go first. */
const MAX_FOLLOWED = 100_000;
/** Acknowledgements kept on disk (the newest); an older one's anomaly has long ended. */
const MAX_ACKS = 10_000;
/** Recent notifications kept for the API. */
const RECENT = 200;

export interface ChannelState {
  name: string;
  type: string;
  /** Last delivery accepted by the receiver / last failure (ms since the epoch; null: never). */
  lastSuccess: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
  queued: number;
  sent: number;
  failed: number;
  /** True while retrying after a failure. */
  backingOff: boolean;
}

export interface RecentNotification {
  id: string;
  channel: string;
  status: 'firing' | 'resolved';
  anomalyId: string;
  kind: string;
  severity: string;
  summary: string;
  test: boolean;
  queuedAt: number;
  /** When the receiver took it; null while queued. */
  sentAt: number | null;
}

export interface Acknowledgement {
  by: string;
  at: number;
  note: string;
}

interface Followed {
  anomaly: AnomalyRecord;
  channels: string[];
  seq: number;
  lastNotifiedAt: number;
  ended: boolean;
  ack: Acknowledgement | null;
}

interface CompiledRoute {
  route: Route;
  prefixes: PrefixIndex<true> | null;
}

class ChannelRunner {
  readonly state: ChannelState;
  readonly outbox: Outbox;
  private readonly send: Sender;
  private wake: (() => void) | null = null;
  private stopped = false;
  private readonly sentTimes: number[] = [];
  private loop: Promise<void> | null = null;

  constructor(
    readonly config: ChannelConfig,
    dir: string,
    private readonly settings: NotifyConfig,
    private readonly onSent: (n: Notification[], channel: string) => void,
    private readonly log?: Pick<Logger, 'warn' | 'info'>,
  ) {
    this.outbox = new Outbox(join(dir, config.name));
    this.send = createSender(config);
    this.state = {
      name: config.name,
      type: config.type,
      lastSuccess: null,
      lastError: null,
      lastErrorAt: null,
      queued: this.outbox.depth,
      sent: 0,
      failed: 0,
      backingOff: false,
    };
  }

  start(): void {
    this.loop = this.run();
  }

  add(n: Notification): boolean {
    const queued = this.outbox.add(n);
    this.state.queued = this.outbox.depth;
    this.wake?.();
    return queued;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = null;
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    const { groupWaitSec, maxGroup, retry } = this.settings;
    let backoffMs = retry.initialSec * 1000;
    while (!this.stopped) {
      const head = this.outbox.peek(1)[0];
      if (head === undefined) {
        await this.sleep(60_000);
        continue;
      }
      // Group: the oldest waits groupWait so that the rest of a burst joins it.
      const due = head.queuedAt + groupWaitSec * 1000 - Date.now();
      if (due > 0 && !head.test) {
        await this.sleep(due);
        continue;
      }
      const limit = this.config.rateLimit;
      if (limit) {
        const windowMs = limit.perSec * 1000;
        while (this.sentTimes.length > 0 && this.sentTimes[0] <= Date.now() - windowMs) this.sentTimes.shift();
        if (this.sentTimes.length >= limit.messages) {
          await this.sleep(this.sentTimes[0] + windowMs - Date.now());
          continue;
        }
      }
      const group = this.outbox.peek(maxGroup);
      try {
        await this.send(group);
      } catch (err) {
        this.state.failed += group.length;
        // One warning per streak of failures, not one per retry.
        if (!this.state.backingOff)
          this.log?.warn(
            { channel: this.config.name, err: (err as Error).message, queued: this.outbox.depth },
            'notification delivery failed; retrying with back-off',
          );
        this.state.lastError = (err as Error).message;
        this.state.lastErrorAt = Date.now();
        this.state.backingOff = true;
        if (this.stopped) break;
        await this.sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, retry.maxSec * 1000);
        continue;
      }
      if (this.state.backingOff) this.log?.info({ channel: this.config.name, queued: this.outbox.depth }, 'notification channel delivering again');
      this.sentTimes.push(Date.now());
      this.outbox.remove(group.length);
      backoffMs = retry.initialSec * 1000;
      Object.assign(this.state, { lastSuccess: Date.now(), backingOff: false, queued: this.outbox.depth, sent: this.state.sent + group.length });
      this.onSent(group, this.config.name);
    }
  }
}

/**
 * The notifier working beside each bus. The API server and the notifier share the process's bus,
 * so the API's resolvers find the notifier through their context's bus (one notifier per bus).
 */
const notifiers = new WeakMap<object, Notifier>();

export function attachNotifier(bus: object, notifier: Notifier): void {
  notifiers.set(bus, notifier);
}

export function detachNotifier(bus: object, notifier: Notifier): void {
  if (notifiers.get(bus) === notifier) notifiers.delete(bus);
}

export function notifierOf(bus: object): Notifier | undefined {
  return notifiers.get(bus);
}

export class Notifier {
  private readonly runners = new Map<string, ChannelRunner>();
  private readonly routes: CompiledRoute[];
  private readonly followed = new Map<string, Followed>();
  private readonly recent: RecentNotification[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** Acknowledgements by anomaly id, kept in the outbox directory across restarts. */
  private readonly acks = new Map<string, Acknowledgement>();
  private readonly acksFile: string;

  constructor(
    readonly config: NotifyConfig,
    log?: Pick<Logger, 'warn' | 'info'>,
  ) {
    for (const c of config.channels) this.runners.set(c.name, new ChannelRunner(c, config.outbox, config, (g, ch) => this.delivered(g, ch), log));
    this.acksFile = join(config.outbox, 'acknowledgements.json');
    try {
      for (const [id, ack] of Object.entries(JSON.parse(readFileSync(this.acksFile, 'utf8')) as Record<string, Acknowledgement>)) this.acks.set(id, ack);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        log?.warn({ file: this.acksFile, err: (err as Error).message }, 'acknowledgements not read; starting without them');
    }
    this.routes = config.routes.map((route) => {
      if (!route.hostPrefixes) return { route, prefixes: null };
      const prefixes = new PrefixIndex<true>();
      for (const p of route.hostPrefixes) prefixes.add(parsePrefix(p), true);
      return { route, prefixes };
    });
  }

  /** Starts delivering (what a previous run left in the outboxes first) and the repeat timer. */
  start(): this {
    for (const r of this.runners.values()) r.start();
    this.timer = setInterval(() => this.repeatDue(Date.now()), 1000);
    this.timer.unref();
    return this;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all([...this.runners.values()].map((r) => r.stop()));
  }

  channels(): ChannelState[] {
    return [...this.runners.values()].map((r) => ({ ...r.state }));
  }

  recentNotifications(limit = 50): RecentNotification[] {
    return this.recent.slice(-limit).reverse();
  }

  /** The channels an anomaly goes to: the union of every matching route's. */
  channelsFor(a: AnomalyRecord): string[] {
    const out = new Set<string>();
    for (const { route, prefixes } of this.routes) {
      if (route.kinds && !route.kinds.includes(a.kind)) continue;
      if (route.severities && !route.severities.includes(a.severity)) continue;
      if (route.nodes && !route.nodes.includes(a.node)) continue;
      if (prefixes && prefixes.lookup(a.source) === undefined && prefixes.lookup(a.targetIp.split('/')[0]) === undefined) continue;
      for (const c of route.channels) out.add(c);
    }
    return [...out];
  }

  /** One anomaly event from the bus. */
  anomaly(e: AnomalyEvent): void {
    const a = e.anomaly;
    const known = this.followed.get(a.anomalyId);
    if (known) {
      known.anomaly = a;
      if (e.type === 'end' || a.state === 'ended') this.end(known);
      return;
    }
    const channels = this.channelsFor(a);
    if (channels.length === 0) return;
    if (e.type === 'end' && a.state === 'ended') {
      // Not followed: it fired before a restart (its firing is in an outbox's journal: it resolves
      // there), or it never fired (nothing to resolve).
      const fired = channels.filter((c) => this.runners.get(c)?.outbox.has(`${a.anomalyId}-firing-0`));
      if (fired.length > 0 && this.config.sendResolved)
        this.queue({ anomaly: a, channels: fired, seq: 0, lastNotifiedAt: Date.now(), ended: true, ack: null }, 'resolved');
      return;
    }
    const f: Followed = { anomaly: a, channels, seq: 0, lastNotifiedAt: Date.now(), ended: false, ack: this.acks.get(a.anomalyId) ?? null };
    this.follow(f);
    this.queue(f, 'firing');
  }

  /** Acknowledges an anomaly: no more repeats. False when it is not followed (never notified, or long gone). */
  acknowledge(anomalyId: string, by: string, note: string): Acknowledgement | null {
    const f = this.followed.get(anomalyId);
    if (!f) return null;
    f.ack = { by, at: Date.now(), note };
    this.acks.set(anomalyId, f.ack);
    if (this.acks.size > MAX_ACKS) this.acks.delete(this.acks.keys().next().value as string);
    // Durable on return (a restart keeps it: no repeats after it either).
    makeDirectory(this.config.outbox);
    writeFileSync(`${this.acksFile}.tmp`, JSON.stringify(Object.fromEntries(this.acks)));
    renameSync(`${this.acksFile}.tmp`, this.acksFile);
    return f.ack;
  }

  acknowledgement(anomalyId: string): Acknowledgement | null {
    return this.followed.get(anomalyId)?.ack ?? this.acks.get(anomalyId) ?? null;
  }

  /** Queues a test notification on one channel; false when there is no such channel. */
  sendTest(channel: string, by = 'api'): Notification | null {
    const r = this.runners.get(channel);
    if (!r) return null;
    const now = Date.now();
    const n: Notification = {
      id: `test-${channel}-${now}`,
      status: 'firing',
      seq: 0,
      queuedAt: now,
      test: true,
      anomaly: {
        ts: now * 1000,
        anomalyId: `test-${now}`,
        node: '',
        kind: 'RULE',
        severity: 'low',
        source: '192.0.2.1',
        targetIp: '192.0.2.2',
        targetPort: 0,
        startedAt: now * 1000,
        lastSeen: now * 1000,
        state: 'active',
        packets: 0,
        bytes: 0,
        evidence: JSON.stringify({ test: true, by }),
        summary: `flowlens test notification for channel ${channel}`,
        evidenceFlows: '0',
      },
    };
    this.add(r, n);
    return n;
  }

  /** Repeats of active, unacknowledged anomalies whose interval has passed (`now`: ms). */
  repeatDue(now: number): void {
    const every = this.config.repeatIntervalSec * 1000;
    if (every <= 0) return;
    for (const f of this.followed.values()) {
      if (f.ended || f.ack !== null || now - f.lastNotifiedAt < every) continue;
      f.seq++;
      f.lastNotifiedAt = now;
      this.queue(f, 'firing');
    }
  }

  private end(f: Followed): void {
    if (f.ended) return;
    f.ended = true;
    if (this.config.sendResolved) this.queue(f, 'resolved');
  }

  private follow(f: Followed): void {
    this.followed.set(f.anomaly.anomalyId, f);
    if (this.followed.size <= MAX_FOLLOWED) return;
    for (const [id, old] of this.followed) {
      if (old.ended) {
        this.followed.delete(id);
        return;
      }
    }
    // All active: the oldest is dropped (it will not repeat or resolve).
    this.followed.delete(this.followed.keys().next().value as string);
  }

  private queue(f: Followed, status: 'firing' | 'resolved'): void {
    const n: Notification = { id: `${f.anomaly.anomalyId}-${status}-${f.seq}`, status, seq: f.seq, queuedAt: Date.now(), anomaly: f.anomaly };
    for (const c of f.channels) {
      const r = this.runners.get(c);
      if (r) this.add(r, n);
    }
  }

  private add(r: ChannelRunner, n: Notification): void {
    if (!r.add(n)) return;
    const a = n.anomaly;
    this.recent.push({
      id: n.id,
      channel: r.config.name,
      status: n.status,
      anomalyId: a.anomalyId,
      kind: a.kind,
      severity: a.severity,
      summary: a.summary,
      test: n.test === true,
      queuedAt: n.queuedAt,
      sentAt: null,
    });
    if (this.recent.length > RECENT) this.recent.shift();
  }

  private delivered(group: Notification[], channel: string): void {
    const now = Date.now();
    const ids = new Set(group.map((n) => n.id));
    for (const r of this.recent) if (r.channel === channel && ids.has(r.id)) r.sentAt = now;
  }
}
