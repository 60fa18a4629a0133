// The event bus of a fleet: capture nodes publish their live events on NATS, `flowlens serve
// --bus` subscribes to every node's. Subjects are `flowlens.<node>.<topic>` (topic: flow, traffic,
// anomaly, plus status heartbeats), payloads JSON.
//
// The connection never gives up: it retries forever with exponential back-off (capped), logs one
// line when it is lost and one when it is back, and subscriptions resume by themselves. Events
// published while disconnected are dropped and counted rather than buffered: they are live
// updates, and the records themselves go to each node's store anyway.
import { connect, Events, type NatsConnection, type Subscription } from 'nats';
import type { Logger } from 'pino';
import type { CaptureInterfaceStatus, StatusProvider, WorkerStatus } from '../api/status.js';
import type { BusEvents, EventBus, Topic } from './types.js';

export const SUBJECT_PREFIX = 'flowlens';
const TOPICS: Topic[] = ['flow', 'traffic', 'anomaly'];
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 10_000;

/** A node name as one NATS subject token ('.', '*', '>' and whitespace are not allowed there). */
export function subjectToken(node: string): string {
  const t = node.replace(/[^A-Za-z0-9_-]/g, '_');
  return t === '' ? '_' : t;
}

export interface NatsBusOptions {
  /** nats://host:port (several comma-separated for a cluster). */
  url: string;
  /** This process's node name: the subject token of what it publishes. */
  node: string;
  logger: Logger;
  /** Connection name shown by the NATS server. */
  name?: string;
}

/** What a capture node announces periodically (subject flowlens.<node>.status). */
export interface NodeStatusEvent {
  node: string;
  /** Sent at (µs). */
  ts: number;
  interfaces: CaptureInterfaceStatus[];
}

type Handler = (e: unknown) => void;

/** Exponential back-off with jitter, capped. */
function backoffMs(attempt: number): number {
  const ms = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(attempt, 10));
  return Math.round(ms * (0.8 + Math.random() * 0.4));
}

export class NatsBus implements EventBus {
  private nc: NatsConnection | null = null;
  private connected = false;
  private closed = false;
  private readonly handlers = new Map<Topic, Set<Handler>>(TOPICS.map((t) => [t, new Set<Handler>()]));
  private readonly subs = new Map<string, Subscription>();
  private readonly nodes = new Map<string, { lastSeen: number; interfaces: CaptureInterfaceStatus[] }>();
  private trackingFleet = false;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();
  private readonly nodeToken: string;
  private attempt = 0;
  /** Events not published because the connection was down. */
  dropped = 0;
  /** Messages received that were not valid JSON. */
  malformed = 0;
  private readonly ready: Promise<void>;

  /** Starts connecting in the background: a NATS server that is down does not hold up the caller. */
  constructor(private readonly opts: NatsBusOptions) {
    this.nodeToken = subjectToken(opts.node);
    this.ready = this.connectLoop();
  }

  /** Resolves once connected the first time (tests, startup logs); never rejects. */
  whenConnected(): Promise<void> {
    return this.ready;
  }

  private async connectLoop(): Promise<void> {
    const { logger, url } = this.opts;
    let nc: NatsConnection;
    for (let tries = 0; ; tries++) {
      if (this.closed) return;
      try {
        nc = await connect({
          servers: url.split(',').map((s) => s.trim()),
          name: this.opts.name ?? `flowlens ${this.opts.node}`,
          reconnect: true,
          maxReconnectAttempts: -1,
          reconnectDelayHandler: () => this.backoff(),
          pingInterval: 10_000,
          maxPingOut: 3,
        });
        break;
      } catch (err) {
        // The first connection retries here (nats.js gives up on a refused first connection).
        const delay = backoffMs(tries);
        if (tries === 0)
          logger.warn({ url, err: (err as Error).message }, `NATS ${url} unreachable: retrying, with back-off up to every ${BACKOFF_MAX_MS / 1000} s`);
        await new Promise((r) => setTimeout(r, delay).unref());
      }
    }
    if (this.closed) {
      await nc.close();
      return;
    }
    this.nc = nc;
    this.connected = true;
    this.attempt = 0;
    logger.info({ url, server: nc.getServer() }, `NATS connected (${nc.getServer()})`);
    for (const topic of TOPICS) if (this.handlers.get(topic)!.size > 0) this.ensureSubscription(topic);
    if (this.trackingFleet) this.ensureSubscription('status');
    void this.watchStatus(nc);
  }

  /** nats.js asks before every reconnection attempt (and once when connecting). */
  private backoff(): number {
    return backoffMs(this.attempt++);
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    const { logger } = this.opts;
    for await (const s of nc.status()) {
      if (s.type === Events.Disconnect) {
        this.connected = false;
        logger.warn({ server: s.data }, `NATS connection to ${String(s.data)} lost: reconnecting (events are dropped meanwhile)`);
      } else if (s.type === Events.Reconnect) {
        this.connected = true;
        this.attempt = 0;
        logger.info({ server: s.data, dropped: this.dropped }, `NATS reconnected to ${String(s.data)}`);
      } else if (s.type === Events.Error) {
        logger.warn({ err: String(s.data) }, 'NATS error');
      }
    }
  }

  private ensureSubscription(what: Topic | 'status'): void {
    const nc = this.nc;
    const subject = `${SUBJECT_PREFIX}.*.${what}`;
    if (!nc || this.subs.has(subject)) return;
    const sub = nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return;
        let event: unknown;
        try {
          event = JSON.parse(this.decoder.decode(msg.data));
        } catch {
          this.malformed++;
          return;
        }
        const node = msg.subject.split('.')[1];
        const known = this.nodes.get(node) ?? { lastSeen: 0, interfaces: [] };
        known.lastSeen = Date.now() * 1000;
        if (what === 'status') known.interfaces = (event as NodeStatusEvent).interfaces ?? [];
        this.nodes.set(node, known);
        if (what === 'status') return;
        for (const h of this.handlers.get(what)!) {
          try {
            h(event);
          } catch {
            // A failing subscriber must not break the others.
          }
        }
      },
    });
    this.subs.set(subject, sub);
  }

  publish<T extends Topic>(topic: T, event: BusEvents[T]): void {
    this.send(topic, event);
  }

  /** A capture node's heartbeat with its interface counters. */
  publishStatus(status: NodeStatusEvent): void {
    this.send('status', status);
  }

  private send(what: string, event: unknown): void {
    const nc = this.nc;
    if (!nc || !this.connected) {
      this.dropped++;
      return;
    }
    try {
      nc.publish(`${SUBJECT_PREFIX}.${this.nodeToken}.${what}`, this.encoder.encode(JSON.stringify(event)));
    } catch {
      this.dropped++; // closing, or the connection broke between the check and the write
    }
  }

  subscribe<T extends Topic>(topic: T, handler: (event: BusEvents[T]) => void): () => void {
    const set = this.handlers.get(topic)!;
    set.add(handler as Handler);
    this.ensureSubscription(topic);
    return () => {
      set.delete(handler as Handler);
    };
  }

  /**
   * True while connected (remote subscribers are unknown to a publisher, so it always builds
   * its events) or when someone in this process listens.
   */
  hasSubscribers(topic: Topic): boolean {
    return this.connected || this.handlers.get(topic)!.size > 0;
  }

  /** Nodes heard from on the bus and their interfaces, for the API's captureStatus. */
  fleetStatus(): StatusProvider {
    this.trackingFleet = true;
    this.ensureSubscription('status');
    return {
      interfaces: () => [...this.nodes.values()].flatMap((n) => n.interfaces),
      workers: (): WorkerStatus[] => [...this.nodes].map(([node, n]) => ({ node, lastSeen: n.lastSeen })),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    const nc = this.nc;
    this.nc = null;
    this.connected = false;
    if (!nc) return;
    try {
      // Sends what is queued, then closes; bounded, a dead server must not hold up the exit.
      await Promise.race([nc.drain(), new Promise((r) => setTimeout(r, 2000).unref())]);
    } catch {
      // closed already
    }
    if (!nc.isClosed()) await nc.close().catch(() => {});
  }
}
