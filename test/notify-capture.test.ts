// @runs-alone (test/run.ts): captures on lo, where other suites' traffic would enter
// Alerting in a live capture: `flowlens run` (capture and API in one process) and `flowlens
// capture`, both on the loopback interface with --rules and --notify-config. Real TCP connections
// to a local port a rule watches must reach a webhook receiver as one firing and, after the rule's
// quiet period, one resolved notification of one RULE anomaly.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLI_ARGV, REPO_ROOT } from './helpers/cli.js';
import { collect, sleep, waitForOutput } from './helpers/netns.js';
import { freePort, HttpReceiver, waitFor } from './helpers/notify-receivers.js';

const skip = process.getuid?.() === 0 ? undefined : 'capturing on lo needs root';
if (skip) console.log(`# notify-capture: skipped: ${skip}`);

let dir: string;
let target: Server;
let targetPort = 0;
const receiver = new HttpReceiver();
const children = new Set<ChildProcess>();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowlens-notify-capture-'));
  await receiver.start();
  target = createServer((s) => s.end('hello\n'));
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  targetPort = (target.address() as { port: number }).port;
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await receiver.stop();
  target?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function connections(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve, reject) => {
      const s = connect(targetPort, '127.0.0.1');
      s.on('data', () => {});
      s.on('end', () => resolve());
      s.on('error', reject);
    });
    await sleep(100);
  }
}

describe('alerting in a live capture', { skip }, () => {
  for (const command of ['run', 'capture'] as const) {
    test(`flowlens ${command} -i lo: a rule's anomaly fires and resolves once on the webhook`, { timeout: 120_000 }, async () => {
      const sub = join(dir, command);
      const rules = join(dir, `${command}.rules`);
      writeFileSync(rules, `set quiet=4s update=1s\nlocal-probe medium transport=tcp serverPort=${targetPort}\n`);
      const notify = join(dir, `${command}.json`);
      writeFileSync(
        notify,
        JSON.stringify({
          outbox: join(sub, 'outbox'),
          groupWaitSec: 0.2,
          channels: { hook: { type: 'webhook', url: `${receiver.url}/${command}` } },
          routes: [{ channels: ['hook'], kinds: ['RULE'] }],
        }),
      );
      const args = [
        command,
        '-i',
        'lo',
        '--workers',
        '1',
        '--db',
        join(dir, `${command}.duckdb`),
        '--rules',
        rules,
        '--notify-config',
        notify,
        '--log-format',
        'json',
      ];
      if (command === 'run') args.push('--port', String(await freePort()));
      const env: NodeJS.ProcessEnv = { NO_COLOR: '1' };
      for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLOWLENS_')) env[k] = v;
      const child = spawn(process.execPath, [...CLI_ARGV, ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(child);
      const out = collect(child);
      await waitForOutput(child, command === 'run' ? /capturing on lo/ : /decode worker/, 60_000);
      const ids = () =>
        receiver.requests
          .filter((r) => r.path === `/${command}`)
          .flatMap((r) =>
            (JSON.parse(r.body) as { notifications: { id: string; anomaly: { kind: string } }[] }).notifications.map((n) => `${n.anomaly.kind} ${n.id}`),
          );
      const failed = (err: Error) => {
        throw new Error(`${err.message}: got ${ids().join(' ')}; log: ${out.stderr().slice(-3000)}`);
      };
      // Connections until the rule fires (the decode worker may take a while to start on a busy
      // machine), then none: the anomaly ends after the quiet period (4 s). The workers publish the
      // first flows' start events too (the subscribers go with their start), else their only event
      // is their end, seconds later, which would start a second anomaly.
      await waitFor(
        'the firing notification',
        async () => {
          if (ids().length > 0) return true;
          await connections(2);
          return undefined;
        },
        60_000,
      ).catch(failed);
      await waitFor('the resolved notification', () => (ids().some((i) => i.includes('-resolved-')) ? true : undefined), 45_000).catch(failed);
      await sleep(1000);
      child.kill('SIGINT');
      const { code } = await out.done;
      children.delete(child);
      assert.equal(code, 0, out.stderr().slice(-3000));
      const got = ids();
      assert.equal(
        got.length,
        2,
        receiver.requests
          .filter((r) => r.path === `/${command}`)
          .map((r) => r.body)
          .join('\n'),
      );
      const [firing, resolved] = got;
      assert.match(firing, /^RULE [0-9a-f]+-firing-0$/);
      assert.equal(resolved, firing.replace('-firing-', '-resolved-'));
    });
  }
});
