// Runs a command and measures its wall time, CPU time and peak memory.
//
// CPU time (user + system) comes from the same rusage of the waited-for children: every thread of
// the command and of the processes it waited for. A tool that uses several cores shows it here,
// where its wall time hides it.
//
// Peak RSS comes from two sources, the larger wins:
// - the kernel's maxrss of the largest process of the tree (wait4 rusage), read through GNU time
//   (/usr/bin/time, Debian package `time`) or, when that is missing, a python3 one-liner using
//   resource.getrusage(RUSAGE_CHILDREN); exact, but per process, not the sum of a tree;
// - polling /proc every 25 ms for the summed VmRSS of the process and all its descendants
//   (catches trees of several processes; may miss a peak shorter than the poll interval).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Measurement {
  code: number | null;
  seconds: number;
  /** Peak resident memory in kB (see above). */
  peakRssKb: number;
  /** Where peakRssKb came from. */
  rssSource: string;
  /** User + system CPU seconds of the command (NaN without a rusage wrapper). */
  cpuSeconds: number;
  stdout: string;
  stderr: string;
}

type Wrapper = 'gnu-time' | 'python3' | 'none';

/** Process groups still running, killed if the benchmark itself is interrupted. */
const live = new Set<number>();
let exitHook = false;
function killLive(): void {
  for (const pgid of live) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', killLive);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      killLive();
      process.exit(130);
    });
  }
}

let wrapperCache: Wrapper | undefined;

/** Which rusage wrapper this machine offers. */
export function rusageWrapper(): Wrapper {
  if (wrapperCache) return wrapperCache;
  if (existsSync('/usr/bin/time') && spawnSync('/usr/bin/time', ['-f', '%M', 'true']).status === 0) {
    wrapperCache = 'gnu-time';
  } else if (spawnSync('python3', ['-c', 'import resource']).status === 0) {
    wrapperCache = 'python3';
  } else {
    wrapperCache = 'none';
  }
  return wrapperCache;
}

const PY_RUSAGE =
  'import resource,subprocess,sys\n' +
  'r=subprocess.call(sys.argv[2:])\n' +
  'u=resource.getrusage(resource.RUSAGE_CHILDREN)\n' +
  "open(sys.argv[1],'w').write('%d %.2f %.2f' % (u.ru_maxrss, u.ru_utime, u.ru_stime))\n" +
  'sys.exit(r if r>=0 else 128-r)\n';

function readStatus(pid: number): { ppid: number; rssKb: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const ppid = Number(/^PPid:\s+(\d+)/m.exec(s)?.[1] ?? -1);
    const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(s)?.[1] ?? 0);
    return { ppid, rssKb };
  } catch {
    return undefined;
  }
}

/** Summed VmRSS of `root`'s descendants (and root itself unless excluded). */
function treeRssKb(root: number, includeRoot: boolean): number {
  const children = new Map<number, number[]>();
  const rss = new Map<number, number>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return 0;
  }
  for (const d of pids) {
    const st = readStatus(Number(d));
    if (!st) continue;
    rss.set(Number(d), st.rssKb);
    const list = children.get(st.ppid) ?? [];
    list.push(Number(d));
    children.set(st.ppid, list);
  }
  let sum = 0;
  const stack = [root];
  while (stack.length) {
    const p = stack.pop()!;
    if (p !== root || includeRoot) sum += rss.get(p) ?? 0;
    stack.push(...(children.get(p) ?? []));
  }
  return sum;
}

export function measure(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; keepStdout?: boolean; timeoutMs?: number } = {},
): Promise<Measurement> {
  const wrapper = rusageWrapper();
  const rusageFile = join(tmpdir(), `flowlens-bench-rusage-${process.pid}-${Math.random().toString(36).slice(2)}`);
  let file = cmd;
  let argv = args;
  if (wrapper === 'gnu-time') {
    file = '/usr/bin/time';
    argv = ['-f', '%M %U %S', '-o', rusageFile, cmd, ...args];
  } else if (wrapper === 'python3') {
    file = 'python3';
    argv = ['-c', PY_RUSAGE, rusageFile, cmd, ...args];
  }
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    // Own process group, so that a timeout kills the wrapper and the measured command together.
    const child = spawn(file, argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    installExitHook();
    if (child.pid) live.add(child.pid);
    let timedOut = false;
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        }, opts.timeoutMs)
      : undefined;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    child.stdout.on('data', (d: Buffer) => {
      // Keep at most 16 MB (flowlens --json is small; tools' chatter is not needed).
      if (opts.keepStdout !== false && outBytes < 16 << 20) out.push(d);
      outBytes += d.length;
    });
    child.stderr.on('data', (d: Buffer) => {
      if (err.length < 10_000) err.push(d);
    });
    let polledPeak = 0;
    const poll = setInterval(() => {
      if (child.pid) polledPeak = Math.max(polledPeak, treeRssKb(child.pid, wrapper === 'none'));
    }, 25);
    child.on('error', (e) => {
      clearInterval(poll);
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      clearInterval(poll);
      clearTimeout(timer);
      if (child.pid) live.delete(child.pid);
      let rusageKb = 0;
      let cpuSeconds = Number.NaN;
      try {
        // "maxrss user system" on the last line (GNU time puts a note before it when the command fails).
        const text = readFileSync(rusageFile, 'utf8').trim().split('\n');
        const [kb, user, sys] = text[text.length - 1].split(' ').map(Number);
        rusageKb = kb || 0;
        if (Number.isFinite(user) && Number.isFinite(sys)) cpuSeconds = user + sys;
      } catch {
        // wrapper missing or the command was killed
      }
      rmSync(rusageFile, { force: true });
      const peakRssKb = Math.max(rusageKb, polledPeak);
      const rssSource = rusageKb >= polledPeak ? `maxrss (${wrapper})` : 'polled tree VmRSS';
      resolve({
        code,
        seconds,
        peakRssKb,
        rssSource,
        cpuSeconds,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: (timedOut ? `killed after ${opts.timeoutMs} ms\n` : '') + Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
