/**
 * Small test networks in network namespaces: two namespaces joined by a veth pair, 10.x addresses
 * chosen per run, real programs run inside them. Everything is torn down by `destroy()` (call it
 * in a finally/after hook): the namespaces go, and with them their veths; the processes started
 * through `spawnIn` are killed first.
 *
 * Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and `ip`; `netnsUnavailable()` says why not.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and live capture)';
  if (spawnSync('ip', ['-V']).status !== 0) return 'needs iproute2 (`ip`)';
  return null;
}

/** The first of `tools` not on PATH, or null. */
export function missingTool(...tools: string[]): string | null {
  for (const t of tools) if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) return t;
  return null;
}

function sh(args: string[], check = true): string {
  const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8' });
  if (check && r.status !== 0) throw new Error(`${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

let counter = 0;

export interface NsPair {
  /** Namespace and veth names. */
  nsA: string;
  nsB: string;
  vethA: string;
  vethB: string;
  ipA: string;
  /** Addresses of B's end (the first is its primary). */
  ipsB: string[];
  /** Runs a command inside a namespace, waiting for it. */
  exec(ns: string, cmd: string[], opts?: { timeoutMs?: number }): { status: number | null; stdout: string; stderr: string };
  /** Starts a long-running command inside a namespace; killed by destroy(). */
  spawnIn(ns: string, cmd: string[], opts?: { env?: NodeJS.ProcessEnv; cwd?: string }): ChildProcess;
  destroy(): void;
}

/**
 * Creates namespaces A and B and a veth pair between them; A gets 10.N.M.1/24, B 10.N.M.2/24 plus
 * `extraB` more addresses (several host pairs, to spread flows over decode workers). IPv6 is off
 * so that no neighbour discovery or router solicitations mix into the captures.
 */
export function createNsPair(extraB = 0): NsPair {
  const id = `${process.pid % 100000}${String.fromCharCode(97 + (counter % 26))}`;
  const n = 100 + (process.pid % 100);
  const m = 1 + (counter++ % 250);
  const nsA = `flA${id}`;
  const nsB = `flB${id}`;
  const vethA = `vA${id}`;
  const vethB = `vB${id}`;
  const ipA = `10.${n}.${m}.1`;
  const ipsB = [`10.${n}.${m}.2`];
  for (let i = 0; i < extraB; i++) ipsB.push(`10.${n}.${m}.${10 + i}`);
  const children: ChildProcess[] = [];

  const destroy = () => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        try {
          c.kill('SIGKILL');
        } catch {
          // gone
        }
      }
    }
    sh(['ip', 'netns', 'del', nsA], false);
    sh(['ip', 'netns', 'del', nsB], false);
    sh(['ip', 'link', 'del', vethA], false); // only if the namespaces were never reached
  };

  try {
    sh(['ip', 'netns', 'add', nsA]);
    sh(['ip', 'netns', 'add', nsB]);
    sh(['ip', 'link', 'add', vethA, 'type', 'veth', 'peer', 'name', vethB]);
    sh(['ip', 'link', 'set', vethA, 'netns', nsA]);
    sh(['ip', 'link', 'set', vethB, 'netns', nsB]);
    for (const [ns, veth, addrs] of [
      [nsA, vethA, [ipA]],
      [nsB, vethB, ipsB],
    ] as const) {
      sh(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']);
      sh(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']);
      for (const a of addrs) sh(['ip', '-n', ns, 'addr', 'add', `${a}/24`, 'dev', veth]);
      sh(['ip', '-n', ns, 'link', 'set', veth, 'up']);
      sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
  } catch (err) {
    destroy();
    throw err;
  }

  return {
    nsA,
    nsB,
    vethA,
    vethB,
    ipA,
    ipsB,
    exec(ns, cmd, opts = {}) {
      const r = spawnSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000 });
      return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    },
    spawnIn(ns, cmd, opts = {}) {
      const c = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd });
      children.push(c);
      return c;
    },
    destroy,
  };
}

/** Resolves when `pattern` shows up in the child's stderr or stdout (rejects on exit or timeout). */
export function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer) => {
      seen += d.toString();
      if (pattern.test(seen)) {
        cleanup();
        resolve(seen);
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`exited (${code}) before printing ${pattern}: ${seen.slice(-2000)}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for ${pattern}: ${seen.slice(-2000)}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
    };
    child.stderr?.on('data', onData);
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Collects a child's output; `done` resolves with its exit status once it ends. */
export function collect(child: ChildProcess): {
  stdout: () => string;
  stderr: () => string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
} {
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { stdout: () => out, stderr: () => err, done };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
