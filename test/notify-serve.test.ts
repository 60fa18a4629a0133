// @runs-alone (test/run.ts): live capture of real nmap and hping3 traffic; a busy machine makes drops
// End to end: `flowlens serve --rules --watchlist --notify-config` (a real child process, DuckDB
// store), captures imported through it with `import --server`: the alerting capture (rule and
// watchlist hits) and, where network namespaces and the tools are there, a real nmap SYN scan and
// an hping3 SYN flood recorded by tcpdump. Receivers: rsyslogd over TCP, an SMTP server, and a
// webhook that is down the whole time; the server is stopped and started again while the webhook
// is down. Each receiver must get exactly one firing and one resolved message per anomaly; the
// webhook gets them all once it is back, in its outbox's order.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createAttackNet } from './helpers/attack-net.js';
import { writeAlertCapture } from './helpers/alert-capture.js';
import { CLI_ARGV, REPO_ROOT, runCli } from './helpers/cli.js';
import { collect, missingTool, netnsUnavailable, sleep, waitForOutput } from './helpers/netns.js';
import { freePort, HttpReceiver, RsyslogReceiver, SmtpReceiver, waitFor } from './helpers/notify-receivers.js';

const attackSkip = netnsUnavailable() ?? (missingTool('tcpdump', 'nmap', 'hping3') ? `needs ${missingTool('tcpdump', 'nmap', 'hping3')}` : null);
if (attackSkip) console.log(`# notify-serve: nmap and hping3 captures skipped: ${attackSkip}`);

let dir: string;
const captures: string[] = [];
const hook = new HttpReceiver();
let hookPort = 0;
const smtp = new SmtpReceiver();
let rsyslog: RsyslogReceiver | null = null;
/** Server processes still running (killed by after() when a test fails midway). */
const running = new Set<ChildProcess>();

/** Records `cmd` (run in namespace A) with tcpdump into `pcap`. */
async function record(pcap: string, cmd: (target: string) => string[]): Promise<void> {
  const net = await createAttackNet();
  try {
    const tcpdump = net.spawnIn(net.nsA, ['tcpdump', '-i', net.vethA, '-n', '-U', '-s', '0', '-w', pcap]);
    const out = collect(tcpdump);
    await waitForOutput(tcpdump, /listening on/);
    await sleep(300);
    const r = net.exec(net.nsA, cmd(net.target), { timeoutMs: 30_000 });
    // hping3 exits 1 when no answer came back.
    assert.ok(r.status === 0 || (cmd('x')[0] === 'hping3' && r.status === 1), `${cmd(net.target).join(' ')}: ${r.stderr}`);
    await sleep(500);
    tcpdump.kill('SIGINT');
    await out.done;
  } finally {
    net.destroy();
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowlens-notify-serve-'));
  captures.push(join(dir, 'alert.pcap'));
  writeAlertCapture(captures[0], { t0: 1_700_000_000, fanout: 30 });
  if (!attackSkip) {
    captures.push(join(dir, 'nmap.pcap'));
    await record(captures[1], (t) => ['nmap', '-n', '-Pn', '-sS', '-p', '1-2000', '-T4', '--max-retries', '0', t]);
    captures.push(join(dir, 'hping.pcap'));
    await record(captures[2], (t) => ['hping3', '-q', '-S', '-p', '8000', '-c', '3000', '-i', 'u100', t]);
  }
  hookPort = await freePort();
  await smtp.start();
  if (RsyslogReceiver.available()) rsyslog = await new RsyslogReceiver(join(dir, 'rsyslog')).start();
});

after(async () => {
  for (const c of running) c.kill('SIGKILL');
  await Promise.all([hook.stop(), smtp.stop(), rsyslog?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

interface Serve {
  child: ChildProcess;
  url: string;
  out: ReturnType<typeof collect>;
}

async function startServe(args: string[]): Promise<Serve> {
  const env: NodeJS.ProcessEnv = { NO_COLOR: '1' };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLOWLENS_')) env[k] = v;
  const child = spawn(process.execPath, [...CLI_ARGV, 'serve', '--port', '0', '--log-format', 'json', ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const out = collect(child);
  const seen = await waitForOutput(child, /flowlens API at (http:\/\/\S+?)"/, 30_000);
  const url = (/flowlens API at (http:\/\/\S+?)"/.exec(seen) as RegExpExecArray)[1];
  return { child, url, out };
}

async function stopServe(s: Serve): Promise<string> {
  s.child.kill('SIGTERM');
  const { code } = await s.out.done;
  assert.equal(code, 0, s.out.stderr().slice(-3000));
  return s.out.stderr();
}

/** Notification ids in a text: syslog's structured data, a mail's header, a webhook's JSON. */
function idsOf(texts: string[], re: RegExp): string[] {
  return texts.flatMap((t) => [...t.matchAll(re)].flatMap((m) => m[1].split(',').map((s) => s.trim())));
}

describe('serve with rules, watchlists and notifications', () => {
  test('every anomaly of the imports: one firing and one resolved message on each channel, across a restart and an outage', { timeout: 120_000 }, async (t) => {
    if (!rsyslog) t.diagnostic('rsyslogd not installed: the syslog channel is left out');
    const db = join(dir, 'flows.duckdb');
    const rules = join(dir, 'alert.rules');
    writeFileSync(
      rules,
      ['set quiet=2s update=1s', 'smb-fanout critical transport=tcp serverPort=445 when peers >= 20 per source in 60s', 'web low serverPort=80', ''].join('\n'),
    );
    const list = join(dir, 'intel.csv');
    writeFileSync(list, 'indicator,type\n198.51.100.0/24,cidr\nbad.example,domain\n');
    const channels: Record<string, unknown> = {
      hook: { type: 'webhook', url: `http://127.0.0.1:${hookPort}/flowlens`, timeoutSec: 2 },
      mail: { type: 'email', host: '127.0.0.1', port: smtp.port, from: 'flowlens@example.org', to: ['noc@example.org'] },
    };
    if (rsyslog) channels.syslog = { type: 'syslog', protocol: 'tcp', host: '127.0.0.1', port: rsyslog.tcpPort };
    const notify = join(dir, 'notify.json');
    writeFileSync(
      notify,
      JSON.stringify({
        outbox: join(dir, 'outbox'),
        groupWaitSec: 0.5,
        maxGroup: 20,
        retry: { initialSec: 0.2, maxSec: 1 },
        channels,
        routes: [{ channels: Object.keys(channels) }],
      }),
    );
    const args = ['--db', db, '--rules', rules, '--watchlist', list, '--notify-config', notify];

    let serve = await startServe(args);
    for (const capture of captures) {
      const r = await runCli(['import', capture, '--server', serve.url, '--json'], { timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr);
    }
    // Every anomaly fired and resolved on the channels that are up. The rules' anomalies end after
    // their quiet period (2 s) on the wall clock once the import is over.
    const settled = (ids: () => string[]) => () => {
      const got = ids();
      const firing = got.filter((i) => i.includes('-firing-'));
      const resolved = got.filter((i) => i.includes('-resolved-'));
      return firing.length >= 4 && resolved.length === firing.length ? got : undefined;
    };
    // Long headers are folded (CRLF and a space before a later id): unfolded first.
    const mailIds = () =>
      idsOf(
        smtp.mails.map((m) => m.raw.replace(/\r?\n(?=[ \t])/g, '')),
        /^X-Flowlens-Notification-Ids: (.*)$/gim,
      );
    await waitFor('the mails', settled(mailIds), 30_000).catch((err: Error) => {
      throw new Error(`${err.message}: got ${mailIds().join(' ')}; server log: ${serve.out.stderr().slice(-3000)}`);
    });
    const metrics = await (await fetch(`${serve.url.replace(/\/graphql$/, '')}/metrics`)).text();
    assert.match(metrics, /^flowlens_notifications_queued\{channel="hook",type="webhook"\} [1-9]\d*$/m, 'the webhook is down: queued');
    assert.match(metrics, /^flowlens_notifications_failed_total\{channel="hook",type="webhook"\} [1-9]\d*$/m);
    // The same through GraphQL.
    const gqlRes = await fetch(serve.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ notificationChannels { name queueDepth retrying } }' }),
    });
    const channelsNow = ((await gqlRes.json()) as { data: { notificationChannels: { name: string; queueDepth: number; retrying: boolean }[] } }).data
      .notificationChannels;
    const hookNow = channelsNow.find((c) => c.name === 'hook');
    assert.ok(hookNow && hookNow.queueDepth > 0 && hookNow.retrying, JSON.stringify(channelsNow));
    const started = (kind: string) => Number((new RegExp(`^flowlens_alert_anomalies_started_total\\{kind="${kind}"\\} (\\d+)$`, 'm').exec(metrics) ?? [])[1]);

    // Restart while the webhook is still down: its outbox carries over.
    const firstLog = await stopServe(serve);
    assert.match(firstLog, /notification delivery failed; retrying with back-off/);
    await sleep(1000);
    serve = await startServe(args);
    await sleep(1500);
    await hook.start(hookPort);
    const hookIds = () =>
      idsOf(
        hook.requests.map((r) => r.headers['x-flowlens-notification-ids'] as string),
        /^(.*)$/g,
      );
    await waitFor('the webhook after the outage', settled(hookIds), 30_000);
    await sleep(1500); // anything doubled would arrive now
    const metrics2 = await (await fetch(`${serve.url.replace(/\/graphql$/, '')}/metrics`)).text();
    assert.match(metrics2, /^flowlens_notifications_queued\{channel="hook",type="webhook"\} 0$/m);
    await stopServe(serve);

    // Exactly once per id, the same ids everywhere, and per anomaly one firing and one resolved.
    const mail = mailIds();
    const hooked = hookIds();
    assert.equal(new Set(mail).size, mail.length, `mail doubled: ${mail.join(' ')}`);
    assert.equal(new Set(hooked).size, hooked.length, `webhook doubled: ${hooked.join(' ')}`);
    assert.deepEqual([...hooked].sort(), [...mail].sort());
    if (rsyslog) {
      const r = rsyslog;
      const sys = await waitFor('syslog', () => {
        const ids = idsOf(r.lines(), / id="([^"]+)"/g);
        return ids.length >= mail.length ? ids : undefined;
      });
      assert.deepEqual([...sys].sort(), [...mail].sort(), 'syslog: the same notifications, once each');
    }
    const anomalies = new Set(mail.map((i) => i.replace(/-(firing|resolved)-\d+$/, '')));
    for (const a of anomalies) assert.deepEqual(mail.filter((i) => i.startsWith(`${a}-`)).sort(), [`${a}-firing-0`, `${a}-resolved-0`]);
    // The webhook got each anomaly's firing before its resolved.
    for (const a of anomalies) assert.ok(hooked.indexOf(`${a}-firing-0`) < hooked.indexOf(`${a}-resolved-0`), a);

    // The store holds the same anomalies (RULE and WATCHLIST ones written by the alerting).
    const exp = await runCli(['export', 'anomalies', '--db', db, '--format', 'jsonl']);
    assert.equal(exp.code, 0, exp.stderr);
    const stored = exp.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id?: string; anomalyId?: string; kind: string; state: string });
    const storedIds = stored.map((s) => s.id ?? s.anomalyId);
    assert.deepEqual([...anomalies].sort(), [...storedIds].sort() as string[]);
    const kinds = stored.map((s) => s.kind).sort();
    t.diagnostic(`anomalies notified: ${kinds.join(', ')}`);
    // The alert capture's smb-fanout and web rules (nmap's probe of port 80 is a third 'web'), its two list hits.
    assert.equal(kinds.filter((k) => k === 'RULE').length, started('RULE'));
    assert.equal(kinds.filter((k) => k === 'WATCHLIST').length, started('WATCHLIST'));
    assert.equal(started('RULE'), attackSkip ? 2 : 3, kinds.join(','));
    assert.equal(started('WATCHLIST'), 2, kinds.join(','));
    if (!attackSkip) {
      assert.ok(kinds.includes('PORT_SCAN'), `nmap: ${kinds.join(',')}`);
      assert.ok(kinds.includes('SYN_FLOOD'), `hping3: ${kinds.join(',')}`);
    }
    assert.ok(stored.every((s) => s.state === 'ended'));
  });

  test('a bad rule file stops the start with one error naming file and line', async () => {
    const rules = join(dir, 'bad.rules');
    writeFileSync(rules, 'ok low serverPort=80\nbroken medium colour=blue\n');
    const r = await runCli(['serve', '--port', '0', '--db', join(dir, 'bad.duckdb'), '--rules', rules], { timeoutMs: 30_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /bad\.rules:2: unknown field 'colour'/);
    const n = join(dir, 'bad-notify.json');
    writeFileSync(n, '{"channels": {"x": {"type": "webhook", "url": "gopher://x"}}, "routes": [{"channels": ["x"]}]}');
    const r2 = await runCli(['serve', '--port', '0', '--db', join(dir, 'bad.duckdb'), '--notify-config', n], { timeoutMs: 30_000 });
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr, /bad-notify\.json: channels\.x\.url: must be http: or https:/);
  });
});
