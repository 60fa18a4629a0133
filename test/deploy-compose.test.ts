// @runs-alone (test/run.ts): captures on lo and waits on its packet counter
// The compose stack's flowlens services run as docker-compose.yml runs them, without containers:
// its `secrets` step (make-token.sh) writes the tokens, NATS starts with token authentication as
// the `nats` service starts it, and the `api` and `capture` services' commands and environments,
// read from docker-compose.yml, run through the image's entrypoint (secrets from *_FILE). Only the
// addresses change (free loopback ports; lo as the interface), and the store: DuckDB files stand in
// for QuestDB, which these machines lack. The API then sees the capture worker live over NATS
// (captureStatus lists node capture-1 and its interface with packets): the compose stack is live.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, REPO_ROOT } from './helpers/cli.js';
import { composeDefaults, DEPLOY, entrypointHome, readYaml, startEntrypoint, stopChild, waitFor, yamlUnavailable, type Proc } from './helpers/deploy.js';
import { missingTool } from './helpers/netns.js';

interface Service {
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
}

const skip =
  (process.getuid?.() !== 0 ? 'needs root (live capture on lo)' : null) ??
  (missingTool('nats-server') ? 'needs nats-server (apt-get install nats-server)' : null) ??
  yamlUnavailable();

describe('docker-compose.yml: the api and capture services, run as compose runs them, talk over NATS', { skip: skip ?? false, timeout: 120_000 }, () => {
  let dir = '';
  const procs: Proc[] = [];
  let apiBase = '';
  let token = '';
  let services: Record<string, Service>;

  /** A service's environment from compose, its /run/flowlens files moved to this run's directory. */
  const environment = (s: Service, changes: Record<string, string | undefined>) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.environment ?? {})) env[k] = composeDefaults(v).replace(/^\/run\/flowlens\//, `${dir}/secrets/`);
    for (const [k, v] of Object.entries(changes)) {
      assert.ok(k in env || v !== undefined, `compose sets no ${k} here: update this test`);
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    return env;
  };
  /** A service's command from compose, with each `from` text replaced (each must be there). */
  const command = (s: Service, replace: [string, string][]) => {
    const args = (s.command ?? []).map(composeDefaults);
    for (const [from, to] of replace) {
      const i = args.indexOf(from);
      assert.ok(i >= 0, `compose command ${args.join(' ')} has no ${from}: update this test`);
      args[i] = to;
    }
    return args;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-compose-'));
    services = readYaml<{ services: Record<string, Service> }>(join(REPO_ROOT, 'docker-compose.yml')).services;

    // The `secrets` service: make-token.sh DIR api-token bus-token.
    const secrets = services.secrets;
    assert.deepEqual(secrets.entrypoint, ['flowlens-make-token', '/run/flowlens', 'api-token', 'bus-token']);
    const made = spawnSync('sh', [join(DEPLOY, 'docker', 'make-token.sh'), join(dir, 'secrets'), 'api-token', 'bus-token'], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    token = readFileSync(join(dir, 'secrets', 'api-token'), 'utf8').trim();
    const busToken = readFileSync(join(dir, 'secrets', 'bus-token'), 'utf8').trim();

    // The `nats` service: nats-server with --auth "$(cat /run/flowlens/bus-token)".
    const natsCmd = (services.nats.entrypoint ?? []).join(' ');
    assert.match(natsCmd, /nats-server .*--auth "\$\$\(cat \/run\/flowlens\/bus-token\)"/);
    const natsPort = await freePort();
    const nats = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' }).stdout.trim();
    procs.push(startTool(nats, ['--addr', '127.0.0.1', '--port', String(natsPort), '--auth', busToken]));

    const home = entrypointHome(dir);
    const apiPort = await freePort();
    apiBase = `http://127.0.0.1:${apiPort}`;
    const api = startEntrypoint(command(services.api, [['nats://nats:4222', `nats://127.0.0.1:${natsPort}`]]), {
      ...environment(services.api, {
        FLOWLENS_QUESTDB: undefined,
        FLOWLENS_QUESTDB_PG: undefined,
        FLOWLENS_HOST: '127.0.0.1',
        FLOWLENS_PORT: String(apiPort),
        FLOWLENS_SPOOL_DIR: join(dir, 'api-spool'),
      }),
      FLOWLENS_DB: join(dir, 'api.duckdb'),
      FLOWLENS_HOME: home,
    });
    procs.push(api);
    const metricsPort = await freePort();
    const capture = startEntrypoint(
      command(services.capture, [
        ['eth0', 'lo'],
        [`nats://127.0.0.1:4222`, `nats://127.0.0.1:${natsPort}`],
        ['127.0.0.1:9464', `127.0.0.1:${metricsPort}`],
      ]),
      {
        ...environment(services.capture, {
          FLOWLENS_QUESTDB: undefined,
          FLOWLENS_QUESTDB_PG: undefined,
          FLOWLENS_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
          FLOWLENS_SPOOL_DIR: join(dir, 'capture-spool'),
        }),
        FLOWLENS_DB: join(dir, 'capture.duckdb'),
        FLOWLENS_HOME: home,
        FLOWLENS_CAPTURE_NODE: process.execPath,
      },
    );
    procs.push(capture);
    const output = () => `--- api\n${api.output()}\n--- capture\n${capture.output()}`;
    await waitFor(async () => ((await fetch(`${apiBase}/health`)).status === 200 ? true : undefined), 45_000, output);
    await waitFor(async () => ((await fetch(`http://127.0.0.1:${metricsPort}/health`)).status === 200 ? true : undefined), 45_000, output);
  });

  after(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the API asks for the token the secrets step wrote', async () => {
    const body = JSON.stringify({ query: '{ captureStatus { workers { node } } }' });
    const refused = await fetch(`${apiBase}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(refused.status, 401);
  });

  it('lists the capture worker (node capture-1, interface lo, packets counted) from its events on NATS', async () => {
    const traffic = setInterval(() => void fetch(`${apiBase}/health`).catch(() => {}), 100);
    try {
      const status = await waitFor(
        async () => {
          const res = await fetch(`${apiBase}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
            body: JSON.stringify({ query: '{ captureStatus { workers { node } interfaces { name node packets } } }' }),
          });
          const s = (await res.json()) as {
            data?: { captureStatus: { workers: { node: string }[]; interfaces: { name: string; node: string; packets: number }[] } };
          };
          const c = s.data?.captureStatus;
          return c?.workers.some((w) => w.node === 'capture-1') && c.interfaces.some((i) => i.node === 'capture-1' && i.name === 'lo' && i.packets > 0)
            ? c
            : undefined;
        },
        45_000,
        () => procs.map((p) => p.output()).join('\n---\n'),
      );
      assert.ok(status.workers.some((w) => w.node === 'capture-1'));
    } finally {
      clearInterval(traffic);
    }
  });
});

function startTool(cmd: string, args: string[]): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  return { child, output: () => out, stop: () => stopChild(child) };
}
