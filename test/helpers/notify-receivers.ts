// Real receivers for the notification tests, on loopback: an HTTP receiver (webhook, Slack format)
// that can be told to refuse, Debian's prometheus-alertmanager, Debian's rsyslogd listening on UDP
// and TCP and writing what it receives to a file, and an SMTP server (the smtp-server package, a
// real SMTP implementation).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as netServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SMTPServer } from 'smtp-server';
import type { AnomalyRecord } from '../../src/records/index.js';

/** A test anomaly's start (µs). */
export const T0 = 1_700_000_000_000_000;

/** An anomaly record as the detectors publish it. */
export function anomaly(id: string, over: Partial<AnomalyRecord> = {}): AnomalyRecord {
  return {
    ts: T0,
    anomalyId: id,
    node: 'edge-1',
    kind: 'PORT_SCAN',
    severity: 'high',
    source: '10.0.0.66',
    targetIp: '10.0.0.5',
    targetPort: 0,
    startedAt: T0,
    lastSeen: T0 + 5_000_000,
    state: 'active',
    packets: 1000,
    bytes: 60_000,
    evidence: JSON.stringify({ distinctPorts: 1000 }),
    summary: `10.0.0.66 probed 1000 ports of 10.0.0.5 (${id})`,
    evidenceFlows: '',
    ...over,
  };
}

/** A port free now on 127.0.0.1 (for programs that cannot be told to take any free port). */
export async function freePort(): Promise<number> {
  const s = netServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export interface HttpRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** An HTTP receiver: records every POST; `refuse` makes it answer 503 (a receiver that is down but up). */
export class HttpReceiver {
  readonly requests: HttpRequest[] = [];
  refuse = false;
  private server: Server | null = null;
  port = 0;

  async start(port = 0): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (this.refuse) {
          res.writeHead(503).end('down for maintenance');
          return;
        }
        this.requests.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** A child process stopped by its own pid (never by name). */
async function stopChild(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

/** Debian's prometheus-alertmanager, alone (no cluster), its API on a free loopback port. */
export class AlertmanagerReceiver {
  private child: ChildProcess | null = null;
  port = 0;
  log = '';

  constructor(private readonly dir: string) {}

  static available(): boolean {
    return existsSync('/usr/bin/prometheus-alertmanager');
  }

  async start(): Promise<this> {
    mkdirSync(join(this.dir, 'data'), { recursive: true });
    const config = join(this.dir, 'alertmanager.yml');
    writeFileSync(config, "route:\n  receiver: 'null'\n  group_wait: 1s\nreceivers:\n  - name: 'null'\n");
    this.port = await freePort();
    this.child = spawn(
      '/usr/bin/prometheus-alertmanager',
      [`--config.file=${config}`, `--storage.path=${join(this.dir, 'data')}`, `--web.listen-address=127.0.0.1:${this.port}`, '--cluster.listen-address='],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child.stdout?.on('data', (d: Buffer) => (this.log += d));
    this.child.stderr?.on('data', (d: Buffer) => (this.log += d));
    await waitFor(`alertmanager on ${this.port}`, async () => {
      if (this.child?.exitCode !== null) throw new Error(`alertmanager exited: ${this.log}`);
      const ok = await fetch(`${this.url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      return ok ? true : undefined;
    });
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The alerts its API holds (active and resolved ones it still keeps). */
  async alerts(): Promise<
    { labels: Record<string, string>; annotations: Record<string, string>; startsAt: string; endsAt: string; status: { state: string } }[]
  > {
    const res = await fetch(`${this.url}/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true`);
    return (await res.json()) as never;
  }

  async stop(): Promise<void> {
    await stopChild(this.child);
    this.child = null;
  }
}

/** Debian's rsyslogd with its own configuration: UDP and TCP inputs on free ports, everything to one file, raw. */
export class RsyslogReceiver {
  private child: ChildProcess | null = null;
  udpPort = 0;
  tcpPort = 0;
  readonly output: string;
  log = '';

  constructor(private readonly dir: string) {
    this.output = join(dir, 'received.log');
  }

  static available(): boolean {
    return existsSync('/usr/sbin/rsyslogd');
  }

  async start(): Promise<this> {
    mkdirSync(this.dir, { recursive: true });
    this.udpPort = this.udpPort || (await freePort());
    this.tcpPort = this.tcpPort || (await freePort());
    const conf = join(this.dir, 'rsyslog.conf');
    writeFileSync(
      conf,
      [
        `global(workDirectory="${this.dir}")`,
        'module(load="imudp")',
        'module(load="imtcp")',
        `input(type="imudp" address="127.0.0.1" port="${this.udpPort}")`,
        `input(type="imtcp" address="127.0.0.1" port="${this.tcpPort}")`,
        // The message as received (PRI, header, structured data, CEF), one a line.
        'template(name="raw" type="string" string="%rawmsg%\\n")',
        `action(type="omfile" file="${this.output}" template="raw" flushOnTXEnd="on" asyncWriting="off")`,
        '',
      ].join('\n'),
    );
    this.child = spawn('/usr/sbin/rsyslogd', ['-n', '-f', conf, '-i', join(this.dir, 'rsyslogd.pid')], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (d: Buffer) => (this.log += d));
    this.child.stderr?.on('data', (d: Buffer) => (this.log += d));
    // Ready once its TCP input accepts connections.
    await waitFor(`rsyslogd on ${this.tcpPort}`, async () => {
      if (this.child?.exitCode !== null) throw new Error(`rsyslogd exited: ${this.log}`);
      const { connect } = await import('node:net');
      return new Promise<true | undefined>((resolve) => {
        const s = connect(this.tcpPort, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(undefined));
      });
    });
    return this;
  }

  lines(): string[] {
    try {
      return readFileSync(this.output, 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  }

  async stop(): Promise<void> {
    await stopChild(this.child);
    this.child = null;
  }
}

export interface Mail {
  from: string;
  to: string[];
  raw: string;
}

/** An SMTP server (smtp-server: a real SMTP implementation), without TLS or authentication. */
export class SmtpReceiver {
  readonly mails: Mail[] = [];
  private server: SMTPServer | null = null;
  port = 0;

  async start(port = 0): Promise<this> {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          this.mails.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks).toString('utf8'),
          });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => this.server?.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.server.address() as { port: number }).port;
    return this;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
