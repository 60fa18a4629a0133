// @runs-alone (test/run.ts): captures on lo and counts its packets
// The image's scripts (deploy/docker) run for real, outside a container: the entrypoint starts a
// real `flowlens serve` and `flowlens capture` (FLOWLENS_HOME holds a dist/cli/main.js that loads
// the sources, its first line the real one so that the V8 flags are read from it), the healthcheck
// asks their /health, and capture runs as an unprivileged user on a copy of node that carries
// cap_net_raw,cap_net_admin as file capabilities, as the Dockerfile makes it: it captures on lo,
// where the same user on plain node is refused. Also make-token.sh, and the Dockerfile's COPY
// sources and settings against the scripts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, REPO_ROOT } from './helpers/cli.js';
import { DEPLOY, entrypointHome, startEntrypoint as startEntrypointScript, waitFor, type Proc } from './helpers/deploy.js';
import { missingTool } from './helpers/netns.js';

const DOCKER = join(DEPLOY, 'docker');
const ENTRYPOINT = join(DOCKER, 'entrypoint.sh');
const HEALTHCHECK = join(DOCKER, 'healthcheck.sh');
const MAKE_TOKEN = join(DOCKER, 'make-token.sh');
const NOBODY = 65534;
const TOKEN = 'docker-test-token-0123456789abcdef';

/** The environment without FLOWLENS_* settings, plus `env`. */
function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLOWLENS_')) out[k] = v;
  return { ...out, ...env };
}

/** Runs a script with /bin/sh, as the image does, optionally as user nobody. */
function sh(script: string, args: string[], env: Record<string, string>, asNobody = false) {
  const argv = asNobody ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'sh', script, ...args] : ['sh', script, ...args];
  // A cold start of tsx (nobody has no compile cache yet) takes long on a busy machine.
  return spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', env: cleanEnv(env), timeout: 60_000 });
}

const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
const startEntrypoint = (args: string[], env: Record<string, string>, asNobody = false): Proc => startEntrypointScript(args, env, asNobody ? AS_NOBODY : []);

const status = async (url: string, token?: string) => (await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} })).status;

describe('deploy/docker scripts', { skip: missingTool('curl', 'setpriv', 'setcap') ? 'needs curl, setpriv and setcap' : false, timeout: 120_000 }, () => {
  let dir = '';
  let home = '';
  const procs: Proc[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-docker-'));
    chmodSync(dir, 0o755);
    home = entrypointHome(dir);
    writeFileSync(join(dir, 'api-token'), `${TOKEN}\n`);
    chmodSync(join(dir, 'api-token'), 0o644);
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('entrypoint: serve on plain node, its token from FLOWLENS_TOKEN_FILE (trailing newline dropped); healthcheck passes', async () => {
    const port = await freePort();
    const env = {
      FLOWLENS_HOME: home,
      FLOWLENS_CAPTURE_NODE: '/nonexistent/node-capture', // serve must not need it
      FLOWLENS_HOST: '0.0.0.0',
      FLOWLENS_PORT: String(port),
      FLOWLENS_TOKEN_FILE: join(dir, 'api-token'),
      FLOWLENS_DB: join(dir, 'api.duckdb'),
    };
    const serve = startEntrypoint(['serve'], env);
    procs.push(serve);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => ((await status(`${base}/health`)) === 200 ? true : undefined), 40_000, serve.output);
    assert.equal(await status(`${base}/metrics`), 401);
    assert.equal(await status(`${base}/metrics`, 'wrong'), 401);
    assert.equal(await status(`${base}/metrics`, TOKEN), 200);
    // The V8 flags of the shebang line reached node.
    const pid = spawnSync('pgrep', ['-P', String(serve.child.pid)], { encoding: 'utf8' }).stdout.trim() || String(serve.child.pid);
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.ok(cmdline.includes('--max-semi-space-size=8'), `node ran as ${cmdline.join(' ')}`);

    // The healthcheck maps the wildcard address to loopback, and fails on a port nobody serves.
    const ok = sh(HEALTHCHECK, [], { FLOWLENS_HOST: '0.0.0.0', FLOWLENS_PORT: String(port) });
    assert.equal(ok.status, 0, ok.stderr);
    const closed = sh(HEALTHCHECK, [], { FLOWLENS_PORT: String(await freePort()) });
    assert.notEqual(closed.status, 0);
    await serve.stop();
  });

  it('entrypoint: one clear error for a bad secret file or home, before flowlens starts', () => {
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    const cases: [Record<string, string>, RegExp][] = [
      [{ FLOWLENS_TOKEN: 'x', FLOWLENS_TOKEN_FILE: join(dir, 'api-token') }, /both FLOWLENS_TOKEN and FLOWLENS_TOKEN_FILE are set: set one/],
      [{ FLOWLENS_BUS_TOKEN_FILE: join(dir, 'missing') }, /FLOWLENS_BUS_TOKEN_FILE: cannot read .*missing/],
      [{ FLOWLENS_QUESTDB_PG_FILE: empty }, /FLOWLENS_QUESTDB_PG_FILE: .*empty is empty/],
      [{ FLOWLENS_HOME: join(dir, 'nowhere') }, /dist\/cli\/main\.js not found \(FLOWLENS_HOME=/],
      [{ FLOWLENS_CAPTURE_NODE: join(dir, 'no-node') }, /no-node is not executable/],
    ];
    for (const [env, message] of cases) {
      const r = sh(ENTRYPOINT, ['capture', '--help'], { FLOWLENS_HOME: home, ...env });
      assert.equal(r.status, 2, `${JSON.stringify(env)}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });

  it('entrypoint: capture as an unprivileged user works through the file capabilities, and only through them', {
    skip: process.getuid?.() !== 0 ? 'needs root (setcap, setpriv)' : false,
  }, async () => {
    const run = join(dir, 'run');
    mkdirSync(run);
    chownSync(run, NOBODY, NOBODY);
    const capNode = join(dir, 'node-capture');
    const plainNode = join(dir, 'node-plain');
    copyFileSync(process.execPath, capNode);
    copyFileSync(process.execPath, plainNode);
    chmodSync(capNode, 0o755);
    chmodSync(plainNode, 0o755);
    const setcap = spawnSync('setcap', ['cap_net_raw,cap_net_admin+eip', capNode], { encoding: 'utf8' });
    assert.equal(setcap.status, 0, setcap.stderr);

    // Plain node, the same user: libpcap is refused.
    const denied = sh(
      ENTRYPOINT,
      ['capture', '--interface', 'lo', '--db', join(run, 'denied.duckdb'), '--duration', '2'],
      { FLOWLENS_HOME: home, FLOWLENS_CAPTURE_NODE: plainNode },
      true,
    );
    assert.ok(
      denied.status !== null && denied.status !== 0,
      `capture without capabilities: exit ${denied.status} ${denied.signal ?? ''}: ${denied.stdout}${denied.stderr}`,
    );
    assert.match(denied.stderr, /permission|not permitted|EPERM/i);

    const port = await freePort();
    const env = {
      FLOWLENS_HOME: home,
      FLOWLENS_CAPTURE_NODE: capNode,
      FLOWLENS_DB: join(run, 'capture.duckdb'),
      FLOWLENS_NODE: 'docker-test',
      FLOWLENS_METRICS_LISTEN: `127.0.0.1:${port}`,
      FLOWLENS_METRICS_TOKEN_FILE: join(dir, 'api-token'),
      FLOWLENS_INTERVAL: '1',
    };
    const capture = startEntrypoint(['capture', '--interface', 'lo'], env, true);
    procs.push(capture);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => ((await status(`${base}/health`)) === 200 ? true : undefined), 40_000, capture.output);
    const health = sh(HEALTHCHECK, [], { FLOWLENS_METRICS_LISTEN: `127.0.0.1:${port}` }, true);
    assert.equal(health.status, 0, health.stderr);
    assert.equal(await status(`${base}/metrics`), 401);
    const traffic = setInterval(() => void fetch(`${base}/health`).catch(() => {}), 100);
    try {
      const packets = await waitFor(
        async () => {
          const text = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
          const m = /flowlens_capture_packets_total\{iface="lo",node="docker-test"\} (\d+)/.exec(text);
          return m && Number(m[1]) > 0 ? Number(m[1]) : undefined;
        },
        30_000,
        capture.output,
      );
      assert.ok(packets > 0);
    } finally {
      clearInterval(traffic);
    }
    // It ran as nobody, with exactly the two capabilities.
    const pids = spawnSync('pgrep', ['-u', String(NOBODY), '-f', 'node-capture'], { encoding: 'utf8' })
      .stdout.trim()
      .split('\n')
      .filter(Boolean);
    assert.ok(pids.length >= 1, 'no node-capture process of user nobody');
    const st = readFileSync(`/proc/${pids[0]}/status`, 'utf8');
    assert.match(st, /^CapEff:\s+0000000000003000$/m, 'effective capabilities: NET_ADMIN and NET_RAW only');
    await capture.stop();
    assert.equal(capture.child.exitCode, 0, capture.output());
  });

  it('make-token writes random tokens once, keeps them, and takes FLOWLENS_TOKEN for the API token', () => {
    const out = join(dir, 'tokens');
    const first = sh(MAKE_TOKEN, [out, 'api-token', 'bus-token'], {});
    assert.equal(first.status, 0, first.stderr);
    const api = readFileSync(join(out, 'api-token'), 'utf8');
    const bus = readFileSync(join(out, 'bus-token'), 'utf8');
    assert.match(api, /^[0-9a-f]{64}\n$/);
    assert.match(bus, /^[0-9a-f]{64}\n$/);
    assert.notEqual(api, bus);
    assert.equal(sh(MAKE_TOKEN, [out, 'api-token', 'bus-token'], {}).status, 0);
    assert.equal(readFileSync(join(out, 'api-token'), 'utf8'), api);
    assert.equal(sh(MAKE_TOKEN, [out, 'api-token', 'bus-token'], { FLOWLENS_TOKEN: 'chosen' }).status, 0);
    assert.equal(readFileSync(join(out, 'api-token'), 'utf8'), 'chosen\n');
    assert.equal(readFileSync(join(out, 'bus-token'), 'utf8'), bus);
    assert.equal(sh(MAKE_TOKEN, [out], {}).status, 2);
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');

  it('copies files that exist, and installs the scripts under the names it runs', () => {
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) (\S+)$/gm)) {
      for (const src of m[1].split(/\s+/)) assert.ok(existsSync(join(REPO_ROOT, src)), `COPY ${src}: missing`);
    }
    for (const script of ['entrypoint.sh', 'healthcheck.sh', 'make-token.sh']) {
      assert.ok(statSync(join(DOCKER, script)).mode & 0o111, `${script} is not executable`);
      assert.equal(spawnSync('sh', ['-n', join(DOCKER, script)]).status, 0, `${script}: sh -n`);
    }
    assert.match(dockerfile, /ENTRYPOINT \["flowlens-entrypoint"\]/);
    assert.match(dockerfile, /HEALTHCHECK .*CMD \["flowlens-healthcheck"\]/);
    assert.match(dockerfile, /COPY deploy\/docker\/entrypoint\.sh \/usr\/local\/bin\/flowlens-entrypoint/);
  });

  it('puts the capture binary where the entrypoint looks for it, and runs as a non-root user', () => {
    const capNode = /setcap cap_net_raw,cap_net_admin\+eip (\S+)/.exec(dockerfile)?.[1];
    assert.ok(capNode);
    assert.ok(readFileSync(ENTRYPOINT, 'utf8').includes(`FLOWLENS_CAPTURE_NODE:-${capNode}`));
    assert.match(dockerfile, /^USER flowlens:flowlens$/m);
    assert.match(dockerfile, /^FROM node:\$\{NODE_VERSION\}-bookworm-slim AS runtime$/m);
    for (const label of ['title', 'description', 'version', 'revision', 'created', 'licenses']) {
      assert.match(dockerfile, new RegExp(`org\\.opencontainers\\.image\\.${label}=`));
    }
  });
});
