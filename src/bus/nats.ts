// The event bus of a fleet: capture nodes publish their live events on NATS, `flowlens serve
// --bus` subscribes to every node's. Subjects are `flowlens.<node>.<topic>` (topic: flow, traffic,
// anomaly, plus status heartbeats), payloads JSON.
//
// The connection never gives up: it retries forever with exponential back-off (capped), logs one
// line when it is lost and one when it is back, and subscriptions resume by themselves. Events
// published while disconnected are dropped and counted rather than buffered: they are live
// updates, and the records themselves go to each node's store anyway.
//
// Security (./security.ts): credentials and TLS go to connect(). A refused connection (bad
// credentials, a certificate that does not verify) is one error line, then quiet retries. A
// publish the server refuses (the subject is not this user's) is counted, and logged once per
// subject. What a subscriber receives must parse as the record its subject claims and carry that
// subject's node (./validate.ts); anything else is dropped and counted by reason.
import { connect, Events, type NatsConnection, type Subscription } from 'nats';
import type { Logger } from 'pino';
import type { CaptureInterfaceStatus, StatusProvider, WorkerStatus } from '../records/status.js';
import { classifyConnectError, connectSecurity, type ConnectFailure, type NatsSecurity } from './security.js';
import type { BusEvents, EventBus, Topic } from './types.js';
import { type InvalidReason, type NodeStatusEvent, subjectToken, validateBusEvent } from './validate.js';

export { subjectToken, type NodeStatusEvent };

export const SUBJECT_PREFIX = 'flowlens';
const TOPICS: Topic[] = ['flow', 'traffic', 'anomaly'];
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 10_000;

/** Distinct subjects (refused publishes) and subject/reason pairs (invalid events) logged at most. */
const MAX_LOGGED = 1000;

export interface NatsBusOptions extends NatsSecurity {
  /** nats://host:port (several comma-separated for a cluster). */
  url: string;
  /** This process's node name: the subject token of what it publishes. */
  node: string;
  logger: Logger;
  /** Connection name shown by the NATS server. */
  name?: string;
  /** How long the connection handshake (TCP, TLS, INFO/CONNECT) may take (default 10 s). */
  connectTimeoutMs?: number;
}

type Handler = (e: unknown) => void;

function describeError(err: unknown): string {
  const e = err as Error & { chainedError?: Error };
  return e.chainedError?.message ? `${e.message}: ${e.chainedError.message}` : String(e?.message ?? err);
}

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
  /** Messages received that were not valid events, by reason (see droppedInvalid()). */
  private readonly invalid = new Map<InvalidReason, number>();
  private readonly invalidLogged = new Set<string>();
  /** Publishes the server refused (permissions violation), by subject. */
  private readonly refused = new Map<string, number>();
  /** Subscriptions the server refused, by subject. */
  private readonly refusedSubs = new Set<string>();
  /** The kind of the last failed connection attempt that was logged (one line per kind). */
  private failureLogged: ConnectFailure | null = null;
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
          // Credentials refused twice would otherwise close the connection for good.
          ignoreAuthErrorAbort: true,
          reconnectDelayHandler: () => this.backoff(),
          pingInterval: 10_000,
          maxPingOut: 3,
          timeout: this.opts.connectTimeoutMs ?? 10_000,
          ...connectSecurity(url, this.opts),
        });
        break;
      } catch (err) {
        // The first connection retries here (nats.js gives up on a refused first connection).
        this.connectFailed(err);
        await new Promise((r) => setTimeout(r, backoffMs(tries)).unref());
      }
    }
    if (this.closed) {
      await nc.close();
      return;
    }
    this.nc = nc;
    this.connected = true;
    this.attempt = 0;
    this.failureLogged = null;
    logger.info({ url, server: nc.getServer() }, `NATS connected (${nc.getServer()})`);
    for (const topic of TOPICS) if (this.handlers.get(topic)!.size > 0) this.ensureSubscription(topic);
    if (this.trackingFleet) this.ensureSubscription('status');
    void this.watchStatus(nc);
  }

  /** One line per kind of failure (unreachable, credentials, TLS), not one per attempt. */
  private connectFailed(err: unknown): void {
    const { logger, url } = this.opts;
    const kind = classifyConnectError(err, Boolean(connectSecurity(url, this.opts).tls));
    if (kind === this.failureLogged) return;
    this.failureLogged = kind;
    let msg = describeError(err);
    if (kind === 'tls' && (err as { code?: string }).code === 'TIMEOUT')
      msg = 'no answer after the TLS handshake: the server may have refused the client certificate';
    const retry = `retrying, with back-off up to every ${BACKOFF_MAX_MS / 1000} s`;
    if (kind === 'auth')
      logger.error(
        { url, err: msg },
        `NATS ${url} refused the credentials (${msg}): check --bus-user/--bus-password, --bus-token, --bus-nkey-seed-file or --bus-creds; ${retry}`,
      );
    else if (kind === 'tls')
      logger.error({ url, err: msg }, `NATS ${url}: TLS failed (${msg}): check --bus-tls-ca, --bus-tls-cert and --bus-tls-key; ${retry}`);
    else logger.warn({ url, err: msg }, `NATS ${url} unreachable: ${retry}`);
  }

  /** The server refused a publish or a subscription (its authorization block): count, log once per subject. */
  private permissionRefused(ctx: { operation: string; subject: string }): void {
    const { logger } = this.opts;
    if (ctx.operation === 'publish') {
      const n = this.refused.get(ctx.subject);
      if (n === undefined && this.refused.size >= MAX_LOGGED) return;
      this.refused.set(ctx.subject, (n ?? 0) + 1);
      if (n === undefined)
        logger.error(
          { subject: ctx.subject },
          `NATS refused a publish to ${ctx.subject} (permissions violation): these credentials may not publish as node ${this.opts.node}; further refusals are counted, not logged`,
        );
    } else if (!this.refusedSubs.has(ctx.subject)) {
      this.refusedSubs.add(ctx.subject);
      logger.error(
        { subject: ctx.subject },
        `NATS refused the subscription to ${ctx.subject} (permissions violation): these credentials may not read the fleet's events`,
      );
    }
  }

  private invalidEvent(subject: string, reason: InvalidReason, detail: string): void {
    this.invalid.set(reason, (this.invalid.get(reason) ?? 0) + 1);
    const key = `${subject} ${reason}`;
    if (this.invalidLogged.has(key) || this.invalidLogged.size >= MAX_LOGGED) return;
    this.invalidLogged.add(key);
    this.opts.logger.warn({ subject, reason, detail }, `NATS: dropped an invalid event on ${subject} (${detail}); further ones are counted, not logged`);
  }

  /** Events received and dropped because they were not the record their subject claims, by reason. */
  droppedInvalid(): Record<string, number> {
    return Object.fromEntries(this.invalid);
  }

  /** Messages received that were not valid events (all reasons). */
  get malformed(): number {
    let n = 0;
    for (const v of this.invalid.values()) n += v;
    return n;
  }

  /** Publishes the server refused, by subject (this node's credentials do not allow them). */
  refusedPublishes(): Record<string, number> {
    return Object.fromEntries(this.refused);
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
        if (s.permissionContext) this.permissionRefused(s.permissionContext);
        else if (s.data === 'AUTHORIZATION_VIOLATION') this.connectFailed(new Error('Authorization Violation'));
        else logger.warn({ err: String(s.data) }, 'NATS error');
      }
    }
  }

  private ensureSubscription(what: Topic | 'status'): void {
    const nc = this.nc;
    const subject = `${SUBJECT_PREFIX}.*.${what}`;
    if (!nc || this.subs.has(subject)) return;
    const sub = nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return; // refused by the server: see permissionRefused()
        const node = msg.subject.split('.')[1];
        const v = validateBusEvent(what, node, this.decoder.decode(msg.data));
        if (!v.ok) {
          this.invalidEvent(msg.subject, v.reason, v.detail);
          return;
        }
        const event = v.event;
        const known = this.nodes.get(node) ?? { lastSeen: 0, interfaces: [] };
        known.lastSeen = Date.now() * 1000;
        if (what === 'status') known.interfaces = (event as NodeStatusEvent).interfaces;
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
