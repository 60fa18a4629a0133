// The channels: each turns a group of notifications into its receiver's own message format and
// sends it, resolving when the receiver has accepted it and throwing (to be retried) otherwise.
//   webhook       POST JSON { notifications: [...] }, X-Flowlens-Signature: sha256=HMAC(secret, body)
//   slack         Slack incoming webhook: { text, blocks } (mrkdwn sections)
//   alertmanager  POST /api/v2/alerts: one alert per notification (endsAt set when resolved)
//   syslog        RFC 5424 with the CEF event as its message; UDP, or TCP/TLS with octet-counting framing
//   email         SMTP through nodemailer: one mail per group
import { createHmac } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createTransport } from 'nodemailer';
import type { ChannelConfig, EmailChannel, SyslogChannel, WebhookChannel } from './config.js';
import type { Notification } from './outbox.js';

export type Sender = (group: Notification[]) => Promise<void>;

const VERSION = '0.1.0';
const HOST = hostname() || '-';

function iso(us: number): string {
  return new Date(Math.floor(us / 1000)).toISOString();
}

function evidenceOf(n: Notification): unknown {
  try {
    return JSON.parse(n.anomaly.evidence);
  } catch {
    return n.anomaly.evidence;
  }
}

/** The one-line text of a notification, for Slack, email and syslog. */
export function headline(n: Notification): string {
  const a = n.anomaly;
  const state = n.status === 'resolved' ? 'RESOLVED' : n.seq > 0 ? `FIRING (repeat ${n.seq})` : 'FIRING';
  return `[${state}] ${a.kind} ${a.severity}: ${a.summary}${a.node ? ` (node ${a.node})` : ''}`;
}

/** The generic webhook's JSON body. */
export function webhookBody(group: Notification[]): string {
  return JSON.stringify({
    version: 1,
    notifications: group.map((n) => ({
      id: n.id,
      status: n.status,
      seq: n.seq,
      test: n.test === true,
      anomaly: { ...n.anomaly, ts: undefined, startedAt: iso(n.anomaly.startedAt), lastSeen: iso(n.anomaly.lastSeen), evidence: evidenceOf(n) },
    })),
  });
}

/** Slack's incoming-webhook message: a text fallback and one mrkdwn section per notification. */
export function slackBody(group: Notification[]): string {
  const blocks = group.slice(0, 50).map((n) => ({
    type: 'section',
    text: {
      type: 'mrkdwn',
      text: `*${headline(n).replace(/[*_~`]/g, '')}*\nstarted ${iso(n.anomaly.startedAt)}, last seen ${iso(n.anomaly.lastSeen)} · id \`${n.id}\``,
    },
  }));
  return JSON.stringify({ text: group.map(headline).join('\n'), blocks });
}

/** Alertmanager v2 alerts; the labels identify the anomaly, so repeats and the resolution update one alert. */
export function alertmanagerBody(group: Notification[]): string {
  return JSON.stringify(
    group.map((n) => {
      const a = n.anomaly;
      return {
        labels: {
          alertname: `flowlens_${a.kind.toLowerCase()}`,
          anomaly_id: a.anomalyId,
          kind: a.kind,
          severity: a.severity,
          node: a.node || 'flowlens',
          source: a.source,
          target: a.targetIp,
        },
        annotations: { summary: a.summary, notification_id: n.id, evidence: a.evidence },
        startsAt: iso(a.startedAt),
        // A resolved alert ends when its anomaly was last seen (at the latest now: Alertmanager refuses none).
        ...(n.status === 'resolved' ? { endsAt: new Date(Math.min(Date.now(), Math.floor(a.lastSeen / 1000) + 1)).toISOString() } : {}),
      };
    }),
  );
}

const CEF_SEVERITY: Record<string, number> = { low: 3, medium: 5, high: 8, critical: 10 };
const SYSLOG_SEVERITY: Record<string, number> = { low: 5, medium: 4, high: 3, critical: 2 };

function cefHeader(s: string): string {
  return s
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ');
}

function cefValue(s: string | number): string {
  return String(s).replace(/\\/g, '\\\\').replace(/=/g, '\\=').replace(/\r?\n/g, '\\n');
}

function sdValue(s: string): string {
  return s.replace(/[\\"\]]/g, (c) => `\\${c}`);
}

/** One RFC 5424 message whose MSG is the CEF event (ArcSight CEF 0). */
export function syslogMessage(n: Notification, facility: number): string {
  const a = n.anomaly;
  const pri = facility * 8 + (n.status === 'resolved' ? 6 : (SYSLOG_SEVERITY[a.severity] ?? 5));
  const ext = [
    `rt=${Math.floor(a.lastSeen / 1000)}`,
    `start=${Math.floor(a.startedAt / 1000)}`,
    /^[0-9a-f.:]+$/i.test(a.source) ? `src=${cefValue(a.source)}` : `suser=${cefValue(a.source)}`,
    a.targetIp && !a.targetIp.includes('/') ? `dst=${cefValue(a.targetIp)}` : '',
    a.targetPort ? `dpt=${a.targetPort}` : '',
    `cnt=${a.packets}`,
    `in=${a.bytes}`,
    `act=${n.status}`,
    `externalId=${cefValue(a.anomalyId)}`,
    `cs1Label=notificationId cs1=${cefValue(n.id)}`,
    `cs2Label=node cs2=${cefValue(a.node)}`,
    `msg=${cefValue(a.summary)}`,
  ].filter(Boolean);
  const cef = `CEF:0|flowlens|flowlens|${VERSION}|${cefHeader(a.kind)}|${cefHeader(`${a.kind} ${n.status}`)}|${n.status === 'resolved' ? 0 : (CEF_SEVERITY[a.severity] ?? 5)}|${ext.join(' ')}`;
  const sd = `[flowlens@32473 id="${sdValue(n.id)}" status="${n.status}" seq="${n.seq}"]`;
  return `<${pri}>1 ${new Date().toISOString()} ${HOST} flowlens ${process.pid} ${a.kind} ${sd} ${cef}`;
}

async function post(url: string, body: string, headers: Record<string, string>, timeoutSec: number): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...headers },
    signal: AbortSignal.timeout(timeoutSec * 1000),
  });
  const text = await res.text().catch(() => '');
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${text.slice(0, 200)}`);
}

function httpSender(c: WebhookChannel): Sender {
  const ids = (g: Notification[]) => g.map((n) => n.id).join(',');
  switch (c.type) {
    case 'slack':
      return (g) => post(c.url, slackBody(g), {}, c.timeoutSec);
    case 'alertmanager':
      return (g) => post(new URL('/api/v2/alerts', c.url).toString(), alertmanagerBody(g), {}, c.timeoutSec);
    default:
      return (g) => {
        const body = webhookBody(g);
        const headers: Record<string, string> = { ...c.headers, 'x-flowlens-notification-ids': ids(g) };
        if (c.secret) headers['x-flowlens-signature'] = `sha256=${createHmac('sha256', c.secret).update(body).digest('hex')}`;
        return post(c.url, body, headers, c.timeoutSec);
      };
  }
}

function syslogSender(c: SyslogChannel): Sender {
  if (c.protocol === 'udp') {
    return (g) =>
      new Promise<void>((resolve, reject) => {
        const sock = createSocket(c.host.includes(':') ? 'udp6' : 'udp4');
        let pending = g.length;
        const done = (err: Error | null) => {
          if (err) {
            sock.close();
            reject(err);
          } else if (--pending === 0) {
            sock.close();
            resolve();
          }
        };
        for (const n of g) sock.send(Buffer.from(syslogMessage(n, c.facility)), c.port, c.host, (err) => done(err));
      });
  }
  const ca = c.caFile ? readFileSync(c.caFile) : undefined;
  // One connection per group: a receiver restarted between groups gets a fresh one.
  return (g) =>
    new Promise<void>((resolve, reject) => {
      const frames = g.map((n) => {
        const msg = Buffer.from(syslogMessage(n, c.facility));
        return Buffer.concat([Buffer.from(`${msg.length} `), msg]);
      });
      let sock: Socket;
      const onConnect = () => sock.end(Buffer.concat(frames));
      if (c.protocol === 'tls') sock = tlsConnect({ host: c.host, port: c.port, ca, servername: c.serverName ?? c.host }, onConnect);
      else sock = tcpConnect({ host: c.host, port: c.port }, onConnect);
      sock.setTimeout(c.timeoutSec * 1000, () => sock.destroy(new Error(`syslog ${c.host}:${c.port}: timed out`)));
      sock.on('error', reject);
      // The receiver has the bytes once it closes its side after ours.
      sock.on('close', (hadError) => {
        if (!hadError) resolve();
      });
    });
}

function emailSender(c: EmailChannel): Sender {
  const transport = createTransport({
    host: c.host,
    port: c.port,
    secure: c.secure,
    requireTLS: c.requireTls,
    auth: c.user ? { user: c.user, pass: c.password ?? '' } : undefined,
    tls: c.caFile ? { ca: readFileSync(c.caFile) } : undefined,
    connectionTimeout: c.timeoutSec * 1000,
    socketTimeout: c.timeoutSec * 1000,
  });
  return async (g) => {
    const subject =
      g.length === 1 ? `flowlens: ${headline(g[0])}` : `flowlens: ${g.length} notifications (${g.filter((n) => n.status === 'firing').length} firing)`;
    const text = g
      .map((n) => `${headline(n)}\n  id ${n.id}\n  started ${iso(n.anomaly.startedAt)}, last seen ${iso(n.anomaly.lastSeen)}\n  evidence ${n.anomaly.evidence}`)
      .join('\n\n');
    await transport.sendMail({ from: c.from, to: c.to, subject, text, headers: { 'X-Flowlens-Notification-Ids': g.map((n) => n.id).join(', ') } });
  };
}

export function createSender(c: ChannelConfig): Sender {
  switch (c.type) {
    case 'syslog':
      return syslogSender(c);
    case 'email':
      return emailSender(c);
    default:
      return httpSender(c);
  }
}
