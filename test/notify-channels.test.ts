// Every notification channel against its real receiver on loopback: an HTTP webhook (HMAC
// signature checked), a Slack-format receiver, Debian's prometheus-alertmanager (what its API then
// holds), Debian's rsyslogd on UDP and TCP (its output file), a TLS syslog receiver (node:tls with
// a certificate made by openssl: Debian's rsyslog here has no TLS driver), and an SMTP server.
// Each receiver must get exactly one firing and one resolved message per anomaly.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as tlsServer, type Server as TlsServer } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { parseNotifyConfig } from '../src/notify/config.js';
import { Notifier } from '../src/notify/notifier.js';
import { AlertmanagerReceiver, anomaly, HttpReceiver, RsyslogReceiver, SmtpReceiver, T0, waitFor } from './helpers/notify-receivers.js';

let dir: string;
const http = new HttpReceiver();
const slack = new HttpReceiver();
const smtp = new SmtpReceiver();
let am: AlertmanagerReceiver | null = null;
let rsyslog: RsyslogReceiver | null = null;
let tls: TlsServer;
let tlsPort = 0;
const tlsReceived: string[] = [];
let notifier: Notifier;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowlens-notify-'));
  await Promise.all([http.start(), slack.start(), smtp.start()]);
  if (AlertmanagerReceiver.available()) am = await new AlertmanagerReceiver(join(dir, 'am')).start();
  if (RsyslogReceiver.available()) rsyslog = await new RsyslogReceiver(join(dir, 'rsyslog')).start();
  // A TLS syslog receiver with a self-signed certificate for 'localhost'; the channel trusts it by caFile.
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  tls = tlsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (sock) => {
    let buf = '';
    sock.on('data', (d: Buffer) => (buf += d.toString('utf8')));
    sock.on('end', () => {
      // Octet-counting framing (RFC 6587): "LEN MSG" repeated.
      while (buf.length > 0) {
        const sp = buf.indexOf(' ');
        const len = Number(buf.slice(0, sp));
        tlsReceived.push(buf.slice(sp + 1, sp + 1 + len));
        buf = buf.slice(sp + 1 + len);
      }
      sock.end();
    });
  });
  await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
  tlsPort = (tls.address() as { port: number }).port;

  const channels: Record<string, unknown> = {
    hook: { type: 'webhook', url: `${http.url}/hook`, secret: 'env:FLOWLENS_TEST_HOOK_SECRET', headers: { 'x-team': 'noc' } },
    slack: { type: 'slack', url: `${slack.url}/services/T000/B000/XXXX` },
    mail: { type: 'email', host: '127.0.0.1', port: smtp.port, from: 'flowlens@example.org', to: ['noc@example.org', 'oncall@example.org'] },
    tls: { type: 'syslog', protocol: 'tls', host: '127.0.0.1', port: tlsPort, serverName: 'localhost', caFile: join(dir, 'cert.pem') },
  };
  if (am) channels.am = { type: 'alertmanager', url: am.url };
  if (rsyslog) {
    channels.udp = { type: 'syslog', protocol: 'udp', host: '127.0.0.1', port: rsyslog.udpPort, facility: 16 };
    channels.tcp = { type: 'syslog', protocol: 'tcp', host: '127.0.0.1', port: rsyslog.tcpPort, facility: 17 };
  }
  process.env.FLOWLENS_TEST_HOOK_SECRET = 's3cret';
  const config = parseNotifyConfig(
    'notify.json',
    JSON.stringify({
      outbox: join(dir, 'outbox'),
      groupWaitSec: 0.2,
      retry: { initialSec: 0.1, maxSec: 0.5 },
      channels,
      routes: [{ channels: Object.keys(channels), kinds: ['PORT_SCAN', 'SYN_FLOOD'] }],
    }),
  );
  notifier = new Notifier(config).start();
});

after(async () => {
  await notifier?.close();
  await Promise.all([http.stop(), slack.stop(), smtp.stop(), am?.stop(), rsyslog?.stop()]);
  tls?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('channels with real receivers', () => {
  test('one firing and one resolved message per anomaly on every channel', async (t) => {
    if (!am) t.diagnostic('prometheus-alertmanager not installed: its channel skipped');
    if (!rsyslog) t.diagnostic('rsyslogd not installed: UDP and TCP syslog skipped');
    const a = anomaly('scan-1');
    const b = anomaly('flood-2', {
      kind: 'SYN_FLOOD',
      severity: 'critical',
      source: 'distributed',
      targetIp: '10.0.0.9',
      targetPort: 443,
      summary: 'SYN flood on 10.0.0.9:443',
    });
    const ignored = anomaly('udp-3', { kind: 'UDP_FLOOD' });
    notifier.anomaly({ type: 'start', anomaly: a });
    notifier.anomaly({ type: 'start', anomaly: b });
    notifier.anomaly({ type: 'start', anomaly: ignored });
    // Updates do not notify; the end does (once, however often it is told).
    notifier.anomaly({ type: 'update', anomaly: { ...a, packets: 2000 } });
    await waitFor('the firing messages', () => (notifier.channels().every((c) => c.sent === 2) ? true : undefined));
    if (am) {
      // Alertmanager holds one active alert per anomaly; its labels identify the anomaly.
      const ours = (await am.alerts()).filter((x) => x.labels.anomaly_id === 'scan-1' || x.labels.anomaly_id === 'flood-2');
      assert.equal(ours.length, 2, JSON.stringify(ours));
      for (const x of ours) {
        assert.equal(x.labels.alertname, `flowlens_${x.labels.kind.toLowerCase()}`);
        assert.equal(x.annotations.notification_id, `${x.labels.anomaly_id}-firing-0`);
        assert.equal(x.startsAt.slice(0, 19), new Date(T0 / 1000).toISOString().slice(0, 19));
        assert.equal(x.status.state, 'active');
      }
    }
    notifier.anomaly({ type: 'end', anomaly: { ...a, state: 'ended' } });
    notifier.anomaly({ type: 'end', anomaly: { ...a, state: 'ended' } });
    notifier.anomaly({ type: 'end', anomaly: { ...b, state: 'ended' } });
    notifier.anomaly({ type: 'end', anomaly: { ...ignored, state: 'ended' } });
    await waitFor('the resolved messages', () => (notifier.channels().every((c) => c.sent === 4 && c.queued === 0) ? true : undefined));
    const expected = ['flood-2-firing-0', 'flood-2-resolved-0', 'scan-1-firing-0', 'scan-1-resolved-0'];

    // Webhook: JSON, signed with HMAC-SHA256 of the body, ids in a header.
    const hookIds = http.requests.flatMap((r) => {
      assert.equal(r.path, '/hook');
      assert.equal(r.headers['x-team'], 'noc');
      assert.equal(r.headers['x-flowlens-signature'], `sha256=${createHmac('sha256', 's3cret').update(r.body).digest('hex')}`);
      const body = JSON.parse(r.body) as {
        version: number;
        notifications: { id: string; status: string; anomaly: { anomalyId: string; evidence: unknown; startedAt: string } }[];
      };
      assert.equal(body.version, 1);
      assert.equal(r.headers['x-flowlens-notification-ids'], body.notifications.map((n) => n.id).join(','));
      for (const n of body.notifications) {
        assert.equal(n.id, `${n.anomaly.anomalyId}-${n.status}-0`);
        assert.equal(typeof n.anomaly.evidence, 'object');
        assert.equal(n.anomaly.startedAt, new Date(T0 / 1000).toISOString());
      }
      return body.notifications.map((n) => n.id);
    });
    assert.deepEqual(hookIds.sort(), expected);

    // Slack: its incoming-webhook format, text fallback and mrkdwn sections.
    const slackTexts = slack.requests.flatMap((r) => {
      const body = JSON.parse(r.body) as { text: string; blocks: { type: string; text: { type: string; text: string } }[] };
      assert.ok(body.blocks.every((bl) => bl.type === 'section' && bl.text.type === 'mrkdwn'));
      assert.equal(body.blocks.length, body.text.split('\n').length);
      return body.text.split('\n');
    });
    assert.deepEqual(slackTexts.sort(), [
      '[FIRING] PORT_SCAN high: 10.0.0.66 probed 1000 ports of 10.0.0.5 (scan-1) (node edge-1)',
      '[FIRING] SYN_FLOOD critical: SYN flood on 10.0.0.9:443 (node edge-1)',
      '[RESOLVED] PORT_SCAN high: 10.0.0.66 probed 1000 ports of 10.0.0.5 (scan-1) (node edge-1)',
      '[RESOLVED] SYN_FLOOD critical: SYN flood on 10.0.0.9:443 (node edge-1)',
    ]);

    // Email: one mail per group, to both recipients, the ids in a header.
    const mailIds = smtp.mails.flatMap((m) => {
      assert.deepEqual(m.to, ['noc@example.org', 'oncall@example.org']);
      assert.equal(m.from, 'flowlens@example.org');
      assert.match(m.raw, /^Subject: flowlens: /m);
      const h = /^X-Flowlens-Notification-Ids: (.*)$/im.exec(m.raw.replace(/\r?\n(?=[ \t])/g, ''));
      assert.ok(h, m.raw);
      return h[1].split(',').map((s) => s.trim());
    });
    assert.deepEqual(mailIds.sort(), expected);

    // TLS syslog: RFC 5424 with the CEF event.
    const tlsIds = tlsReceived.map((m) => {
      assert.match(
        m,
        /^<1[0-9]{2}>1 \S+ \S+ flowlens \d+ (PORT_SCAN|SYN_FLOOD) \[flowlens@32473 id="[^"]+" status="(firing|resolved)" seq="0"\] CEF:0\|flowlens\|flowlens\|/,
      );
      return (/ id="([^"]+)"/.exec(m) as RegExpExecArray)[1];
    });
    assert.deepEqual(tlsIds.sort(), expected);

    if (rsyslog) {
      const r = rsyslog;
      // rsyslog writes asynchronously: wait for all four of each input.
      const lines = await waitFor('rsyslog output', () => (r.lines().length >= 8 ? r.lines() : undefined));
      assert.equal(lines.length, 8, lines.join('\n'));
      const byFacility = (f: number) =>
        lines
          .filter((l) => Math.floor(Number((/^<(\d+)>/.exec(l) as RegExpExecArray)[1]) / 8) === f)
          .map((l) => (/ id="([^"]+)"/.exec(l) as RegExpExecArray)[1])
          .sort();
      assert.deepEqual(byFacility(16), expected, 'UDP (local0)');
      assert.deepEqual(byFacility(17), expected, 'TCP (local1)');
      const scanFiring = lines.find((l) => l.includes('id="scan-1-firing-0"')) as string;
      // local0 (16) * 8 + error (3: severity high) = 131, or local1: 139.
      assert.match(scanFiring, /^<(131|139)>1 /);
      assert.match(
        scanFiring,
        /CEF:0\|flowlens\|flowlens\|[^|]+\|PORT_SCAN\|PORT_SCAN firing\|8\|rt=\d+ start=\d+ src=10\.0\.0\.66 dst=10\.0\.0\.5 cnt=1000 in=60000 act=firing externalId=scan-1 /,
      );
      const floodResolved = lines.find((l) => l.includes('id="flood-2-resolved-0"')) as string;
      assert.match(floodResolved, /\|SYN_FLOOD resolved\|0\|.* suser=distributed dst=10\.0\.0\.9 dpt=443 /);
    }

    if (am) {
      // The resolved posts ended both alerts: the API lists none of them as active, and its own
      // counters saw two firing and two resolved alerts.
      const ours = (await am.alerts()).filter((x) => x.labels.anomaly_id === 'scan-1' || x.labels.anomaly_id === 'flood-2');
      assert.deepEqual(ours, []);
      const metrics = await (await fetch(`${am.url}/metrics`)).text();
      const received = (status: string) =>
        Number((new RegExp(`^alertmanager_alerts_received_total\\{status="${status}",version="v2"\\} (\\d+)`, 'm').exec(metrics) ?? [])[1]);
      assert.equal(received('firing'), 2, metrics);
      assert.equal(received('resolved'), 2);
    }

    const states = notifier.channels();
    for (const c of states) {
      assert.equal(c.failed, 0, `${c.name}: ${c.lastError}`);
      assert.ok(c.lastSuccess !== null);
    }
    // The recent notifications: four per channel, all delivered.
    const recent = notifier.recentNotifications(200);
    assert.equal(recent.length, 4 * states.length);
    assert.ok(recent.every((r) => r.sentAt !== null));
  });

  test('a test notification reaches its channel only', async () => {
    const before = http.requests.length;
    const slackBefore = slack.requests.length;
    const n = notifier.sendTest('hook', 'alice');
    assert.ok(n);
    assert.equal(notifier.sendTest('nope'), null);
    await waitFor('the test notification', () => (http.requests.length > before ? true : undefined));
    const body = JSON.parse(http.requests[before].body) as { notifications: { id: string; test: boolean }[] };
    assert.deepEqual(
      body.notifications.map((x) => [x.id, x.test]),
      [[n.id, true]],
    );
    assert.equal(slack.requests.length, slackBefore);
  });
});

describe('configuration errors', () => {
  const bad = (text: string) => () => parseNotifyConfig('/etc/flowlens/notify.json', text);
  test('one error naming the file and the setting', () => {
    const ok = { channels: { h: { type: 'webhook', url: 'http://127.0.0.1:1/' } }, routes: [{ channels: ['h'] }] };
    assert.throws(bad('{\n  "channels": {,\n}'), /^Error: \/etc\/flowlens\/notify\.json:2: not valid JSON/);
    assert.throws(bad(JSON.stringify({ ...ok, routes: [{ channels: ['x'] }] })), /notify\.json: routes\[0\]\.channels: 'x' is not one of h$/);
    assert.throws(
      bad(JSON.stringify({ ...ok, channels: { h: { type: 'pager', url: 'http://x/' } } })),
      /channels\.h\.type: must be one of webhook, slack, alertmanager, syslog, email/,
    );
    assert.throws(bad(JSON.stringify({ ...ok, channels: { h: { type: 'webhook', url: 'ftp://x/' } } })), /channels\.h\.url: must be http: or https:/);
    assert.throws(
      bad(JSON.stringify({ ...ok, channels: { h: { type: 'syslog', host: 'x', protocol: 'sctp' } } })),
      /channels\.h\.protocol: must be udp, tcp or tls/,
    );
    assert.throws(bad(JSON.stringify({ ...ok, routes: [{ channels: ['h'], kinds: ['PORTSCAN'] }] })), /routes\[0\]\.kinds: 'PORTSCAN' is not one of/);
    assert.throws(bad(JSON.stringify({ ...ok, routes: [{ channels: ['h'], hostPrefixes: ['10.0.0.0/33'] }] })), /routes\[0\]\.hostPrefixes: /);
    assert.throws(bad(JSON.stringify({ ...ok, routes: [] })), /routes: must be a non-empty list/);
    assert.throws(bad(JSON.stringify({ ...ok, groupwait: 3 })), /groupwait: unknown setting/);
    delete process.env.FLOWLENS_TEST_UNSET;
    assert.throws(
      bad(JSON.stringify({ ...ok, channels: { h: { type: 'webhook', url: 'http://x/', secret: 'env:FLOWLENS_TEST_UNSET' } } })),
      /channels\.h\.secret: environment variable FLOWLENS_TEST_UNSET is not set/,
    );
    assert.equal(parseNotifyConfig('n.json', JSON.stringify(ok)).groupWaitSec, 5);
  });

  test('routes by kind, severity, node and host prefix', () => {
    const config = parseNotifyConfig(
      'n.json',
      JSON.stringify({
        outbox: join(dir, 'routes-outbox'),
        channels: {
          a: { type: 'webhook', url: 'http://127.0.0.1:1/' },
          b: { type: 'webhook', url: 'http://127.0.0.1:1/' },
          c: { type: 'webhook', url: 'http://127.0.0.1:1/' },
        },
        routes: [
          { channels: ['a'], severities: ['critical'] },
          { channels: ['b'], nodes: ['edge-2'], kinds: ['HOST_SCAN'] },
          { channels: ['c'], hostPrefixes: ['192.168.0.0/16', '2001:db8::/32'] },
        ],
      }),
    );
    const n = new Notifier(config);
    assert.deepEqual(n.channelsFor(anomaly('x')), []);
    assert.deepEqual(n.channelsFor(anomaly('x', { severity: 'critical' })), ['a']);
    assert.deepEqual(n.channelsFor(anomaly('x', { node: 'edge-2', kind: 'HOST_SCAN' })), ['b']);
    assert.deepEqual(n.channelsFor(anomaly('x', { node: 'edge-2' })), []);
    assert.deepEqual(n.channelsFor(anomaly('x', { targetIp: '192.168.7.0/24' })), ['c']);
    assert.deepEqual(n.channelsFor(anomaly('x', { source: '2001:db8::1', severity: 'critical' })), ['a', 'c']);
  });
});
