// The notification configuration: one JSON file with the channels, the routes that send anomalies
// to them, and the delivery settings. Checked whole at start-up; anything unknown or malformed is
// one error naming the file, the setting and the reason (JSON syntax errors: the line).
import { readFileSync } from 'node:fs';
import { ANOMALY_KINDS, SEVERITIES } from '../records/anomaly.js';
import { parsePrefix } from '../alert/ip-prefix.js';

export const CHANNEL_TYPES = ['webhook', 'slack', 'alertmanager', 'syslog', 'email'] as const;
export type ChannelType = (typeof CHANNEL_TYPES)[number];

export interface RateLimit {
  /** At most this many messages... */
  messages: number;
  /** ...per this many seconds; the rest wait in the outbox (and are grouped into later messages). */
  perSec: number;
}

interface ChannelBase {
  name: string;
  type: ChannelType;
  rateLimit?: RateLimit;
  /** A send taking longer fails (and is retried). */
  timeoutSec: number;
}

export interface WebhookChannel extends ChannelBase {
  type: 'webhook' | 'slack' | 'alertmanager';
  url: string;
  /** Webhook: HMAC-SHA256 key of the X-Flowlens-Signature header. */
  secret?: string;
  headers?: Record<string, string>;
}

export interface SyslogChannel extends ChannelBase {
  type: 'syslog';
  protocol: 'udp' | 'tcp' | 'tls';
  host: string;
  port: number;
  /** syslog facility number (16 = local0). */
  facility: number;
  /** TLS: PEM file of the CA that signed the receiver's certificate (default: the system's). */
  caFile?: string;
  /** TLS: name the receiver's certificate must carry (default: host). */
  serverName?: string;
}

export interface EmailChannel extends ChannelBase {
  type: 'email';
  host: string;
  port: number;
  /** TLS from the start (465); otherwise STARTTLS when the server offers it. */
  secure: boolean;
  /** Refuse to send without TLS (STARTTLS required). */
  requireTls: boolean;
  user?: string;
  password?: string;
  from: string;
  to: string[];
  caFile?: string;
}

export type ChannelConfig = WebhookChannel | SyslogChannel | EmailChannel;

export interface Route {
  channels: string[];
  kinds?: string[];
  severities?: string[];
  nodes?: string[];
  /** Source or target address inside one of these prefixes. */
  hostPrefixes?: string[];
}

export interface NotifyConfig {
  file: string;
  outbox: string;
  /** A notification waits this long in the outbox so that a burst goes out as one message. */
  groupWaitSec: number;
  /** Largest group in one message. */
  maxGroup: number;
  /** An anomaly still active is notified again this often (0: never); acknowledging it stops this. */
  repeatIntervalSec: number;
  sendResolved: boolean;
  retry: { initialSec: number; maxSec: number };
  channels: ChannelConfig[];
  routes: Route[];
}

class ConfigError extends Error {}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads and checks a configuration; every problem is one error naming the file. */
export function loadNotifyConfig(file: string): NotifyConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  return parseNotifyConfig(file, text);
}

export function parseNotifyConfig(file: string, text: string): NotifyConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    const m = /position (\d+)/.exec((err as Error).message);
    const line = m ? text.slice(0, Number(m[1])).split('\n').length : 0;
    throw new Error(`${file}${line ? `:${line}` : ''}: not valid JSON: ${(err as Error).message}`);
  }
  try {
    return check(file, raw);
  } catch (err) {
    if (err instanceof ConfigError) throw new Error(`${file}: ${err.message}`);
    throw err;
  }
}

function only(o: Obj, where: string, keys: string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new ConfigError(`${where}${k}: unknown setting (known: ${keys.join(', ')})`);
}

function num(o: Obj, key: string, where: string, dflt: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new ConfigError(`${where}${key}: must be a number from ${min} to ${max}`);
  return v;
}

function str(o: Obj, key: string, where: string, required: boolean): string | undefined {
  const v = o[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v === '') throw new ConfigError(`${where}${key}: must be a non-empty string`);
  return v;
}

function strList(o: Obj, key: string, where: string, allowed?: readonly string[]): string[] | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length === 0 || !v.every((s) => typeof s === 'string'))
    throw new ConfigError(`${where}${key}: must be a non-empty list of strings`);
  if (allowed) for (const s of v) if (!allowed.includes(s)) throw new ConfigError(`${where}${key}: '${s}' is not one of ${allowed.join(', ')}`);
  return v as string[];
}

/** A secret given as `"env:NAME"` is read from that environment variable (kept out of the file). */
function secret(o: Obj, key: string, where: string): string | undefined {
  const v = str(o, key, where, false);
  if (v?.startsWith('env:')) {
    const value = process.env[v.slice(4)];
    if (!value) throw new ConfigError(`${where}${key}: environment variable ${v.slice(4)} is not set`);
    return value;
  }
  return v;
}

function url(o: Obj, where: string): string {
  const u = str(o, 'url', where, true) as string;
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    throw new ConfigError(`${where}url: '${u}' is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ConfigError(`${where}url: must be http: or https:`);
  return u;
}

function channel(name: string, o: unknown): ChannelConfig {
  const where = `channels.${name}.`;
  if (!isObj(o)) throw new ConfigError(`channels.${name}: must be an object`);
  const type = o.type as ChannelType;
  if (!CHANNEL_TYPES.includes(type)) throw new ConfigError(`${where}type: must be one of ${CHANNEL_TYPES.join(', ')}`);
  let rateLimit: RateLimit | undefined;
  if (o.rateLimit !== undefined) {
    if (!isObj(o.rateLimit)) throw new ConfigError(`${where}rateLimit: must be { "messages": N, "perSec": S }`);
    only(o.rateLimit, `${where}rateLimit.`, ['messages', 'perSec']);
    rateLimit = {
      messages: num(o.rateLimit, 'messages', `${where}rateLimit.`, undefined, 1),
      perSec: num(o.rateLimit, 'perSec', `${where}rateLimit.`, undefined, 0.001),
    };
  }
  const base = { name, rateLimit, timeoutSec: num(o, 'timeoutSec', where, 10, 0.1, 300) };
  const common = ['type', 'rateLimit', 'timeoutSec'];
  switch (type) {
    case 'webhook':
    case 'slack':
    case 'alertmanager': {
      only(o, where, [...common, 'url', ...(type === 'webhook' ? ['secret', 'headers'] : [])]);
      const headers = o.headers;
      if (headers !== undefined && (!isObj(headers) || !Object.values(headers).every((v) => typeof v === 'string')))
        throw new ConfigError(`${where}headers: must be an object of strings`);
      return { ...base, type, url: url(o, where), secret: secret(o, 'secret', where), headers: headers as Record<string, string> | undefined };
    }
    case 'syslog': {
      only(o, where, [...common, 'protocol', 'host', 'port', 'facility', 'caFile', 'serverName']);
      const protocol = (o.protocol ?? 'udp') as SyslogChannel['protocol'];
      if (!['udp', 'tcp', 'tls'].includes(protocol)) throw new ConfigError(`${where}protocol: must be udp, tcp or tls`);
      return {
        ...base,
        type,
        protocol,
        host: str(o, 'host', where, true) as string,
        port: num(o, 'port', where, protocol === 'tls' ? 6514 : 514, 1, 65535),
        facility: num(o, 'facility', where, 16, 0, 23),
        caFile: str(o, 'caFile', where, false),
        serverName: str(o, 'serverName', where, false),
      };
    }
    case 'email': {
      only(o, where, [...common, 'host', 'port', 'secure', 'requireTls', 'user', 'password', 'from', 'to', 'caFile']);
      const to = strList(o, 'to', where);
      if (!to) throw new ConfigError(`${where}to: must be a non-empty list of strings`);
      return {
        ...base,
        type,
        host: str(o, 'host', where, true) as string,
        port: num(o, 'port', where, 25, 1, 65535),
        secure: o.secure === true,
        requireTls: o.requireTls === true,
        user: str(o, 'user', where, false),
        password: secret(o, 'password', where),
        from: str(o, 'from', where, true) as string,
        to,
        caFile: str(o, 'caFile', where, false),
      };
    }
  }
}

function check(file: string, raw: unknown): NotifyConfig {
  if (!isObj(raw)) throw new ConfigError('must be a JSON object');
  only(raw, '', ['outbox', 'groupWaitSec', 'maxGroup', 'repeatIntervalSec', 'sendResolved', 'retry', 'channels', 'routes']);
  if (!isObj(raw.channels) || Object.keys(raw.channels).length === 0) throw new ConfigError('channels: must be an object with at least one channel');
  const channels = Object.entries(raw.channels).map(([name, c]) => {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw new ConfigError(`channels.${name}: a channel name is 1 to 64 letters, digits, '_' or '-'`);
    return channel(name, c);
  });
  if (!Array.isArray(raw.routes) || raw.routes.length === 0) throw new ConfigError('routes: must be a non-empty list (nothing is sent without a route)');
  const routes = raw.routes.map((r, i): Route => {
    const where = `routes[${i}].`;
    if (!isObj(r)) throw new ConfigError(`routes[${i}]: must be an object`);
    only(r, where, ['channels', 'kinds', 'severities', 'nodes', 'hostPrefixes']);
    const names = strList(
      r,
      'channels',
      where,
      channels.map((c) => c.name),
    );
    if (!names) throw new ConfigError(`${where}channels: must be a non-empty list of strings`);
    const hostPrefixes = strList(r, 'hostPrefixes', where);
    for (const p of hostPrefixes ?? []) {
      try {
        parsePrefix(p);
      } catch (err) {
        throw new ConfigError(`${where}hostPrefixes: ${(err as Error).message}`);
      }
    }
    return {
      channels: names,
      kinds: strList(r, 'kinds', where, ANOMALY_KINDS),
      severities: strList(r, 'severities', where, SEVERITIES),
      nodes: strList(r, 'nodes', where),
      hostPrefixes,
    };
  });
  const retry = isObj(raw.retry) ? raw.retry : {};
  if (raw.retry !== undefined && !isObj(raw.retry)) throw new ConfigError('retry: must be { "initialSec": S, "maxSec": S }');
  only(retry, 'retry.', ['initialSec', 'maxSec']);
  if (raw.sendResolved !== undefined && typeof raw.sendResolved !== 'boolean') throw new ConfigError('sendResolved: must be true or false');
  return {
    file,
    outbox: (str(raw, 'outbox', '', false) as string | undefined) ?? './data/outbox',
    groupWaitSec: num(raw, 'groupWaitSec', '', 5, 0, 3600),
    maxGroup: num(raw, 'maxGroup', '', 50, 1, 1000),
    repeatIntervalSec: num(raw, 'repeatIntervalSec', '', 4 * 3600, 0),
    sendResolved: raw.sendResolved !== false,
    retry: { initialSec: num(retry, 'initialSec', 'retry.', 1, 0.01, 3600), maxSec: num(retry, 'maxSec', 'retry.', 300, 0.01, 86400) },
    channels,
    routes,
  };
}
