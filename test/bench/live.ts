// Live capture figure (issue 5): replay the benchmark capture with tcpreplay into one end of a veth
// pair and capture on the other end, with `flowlens capture` and, for reference, with
// `tcpdump -w /dev/null`, one at a time. For each tool: the drops at --topspeed, and the highest
// fixed rate (tcpreplay --pps) at which nothing is lost (no kernel, interface or decode-ring drop,
// and every packet sent was captured), with the packets per second captured there.
//
// The veth pair joins two network namespaces of its own (test/helpers/netns.ts), so the replayed
// traffic never reaches a real interface; everything is deleted at the end. Both tools run with
// their default buffers: flowlens 16 MB of kernel buffer (--buffer-mb) plus a 32 MB ring per decode
// worker, tcpdump libpcap's 2 MB. A step lasts only a few seconds, so a buffer absorbs part of a
// shortfall: a rate passing here is an upper bound of what either tool sustains for minutes.
//
// Needs root, iproute2, tcpreplay, tcpdump and editcap (wireshark-common).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { collect, createNsPair, missingTool, netnsUnavailable, sleep, waitForOutput, type NsPair } from '../helpers/netns.js';
import { ensureBuilt, flowlensCommand, REPO_ROOT } from './flowlens.js';

export interface LiveBenchOptions {
  /** The capture to replay; its first `packets` packets are cut out once (cached beside it). */
  capture: string;
  packets?: number;
  /** Seconds of sending at each fixed rate. */
  stepSeconds?: number;
  /** Fixed rates tried (packets/s), highest first below what --topspeed reached, until one is clean. */
  rates?: number[];
  /** Fewer, coarser rate steps and shorter steps. */
  quick?: boolean;
  /** flowlens --buffer-mb (default: flowlens's own default). */
  bufferMb?: number;
  /** flowlens --workers (default: flowlens's own default, from the cores). */
  workers?: number;
  /** Stop trying new steps after this long (ms). */
  budgetMs?: number;
  log?: (msg: string) => void;
}

export interface LiveStep {
  /** Target rate (packets/s), or 0 for --topspeed. */
  rate: number;
  sent: number;
  sendSeconds: number;
  captured: number;
  /** Drops the tool reports: kernel + interface + decode ring for flowlens, kernel for tcpdump. */
  drops: number;
  detail: string;
  /** Sent but neither captured nor reported dropped (lost before the capture, or not read at the end). */
  unaccounted: number;
  clean: boolean;
}

export interface LiveToolResult {
  tool: string;
  steps: LiveStep[];
  topspeed?: LiveStep;
  /** The highest clean step (topspeed when that was clean). */
  best?: LiveStep;
  error?: string;
}

export interface LiveBenchResult {
  skipped?: string;
  slice?: string;
  packets?: number;
  flowlensHow?: string;
  stepSeconds?: number;
  /** flowlens --workers when set. */
  workers?: number;
  tools: LiveToolResult[];
  seconds: number;
  /** The machine's 1-minute load average before and after (the machine is shared). */
  loadAverage?: [number, number];
}

const FULL_RATES = [25_000, 35_000, 50_000, 70_000, 100_000, 140_000, 200_000, 280_000, 400_000];
const QUICK_RATES = [25_000, 50_000, 100_000, 200_000, 400_000];

/** The first `packets` packets of `capture`, cut with editcap once and kept beside it. */
function slice(capture: string, packets: number): string {
  const out = join(REPO_ROOT, 'test', '.cache', `${basename(capture, '.pcap')}-first${packets}.pcap`);
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(capture).mtimeMs) return out;
  const tmp = `${out}.tmp-${process.pid}`;
  const r = spawnSync('editcap', ['-F', 'pcap', '-r', capture, tmp, `1-${packets}`], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    throw new Error(`editcap failed (${r.status}): ${r.stderr}`);
  }
  renameSync(tmp, out);
  return out;
}

/**
 * Replays the slice into B's end, looping through it: `rate` packets/s (0: --topspeed) for about
 * `seconds` (at top speed tcpreplay checks the duration between passes through the slice).
 */
async function replay(net: NsPair, file: string, packets: number, rate: number, seconds: number): Promise<{ sent: number; seconds: number }> {
  const args = ['tcpreplay', '-i', net.vethB, '-K'];
  if (rate === 0) args.push('--topspeed', '--loop=0', `--duration=${seconds}`);
  else {
    const limit = Math.round(rate * seconds);
    args.push(`--pps=${rate}`, `--limit=${limit}`, `--loop=${Math.ceil(limit / packets)}`);
  }
  const child = net.spawnIn(net.nsB, [...args, file]);
  const out = collect(child);
  const { code } = await out.done;
  const m = /Actual: (\d+) packets \(\d+ bytes\) sent in ([\d.]+) seconds/.exec(out.stdout());
  if (code !== 0 || !m) throw new Error(`tcpreplay failed (exit ${code}): ${(out.stdout() + out.stderr()).split('\n').slice(-8).join(' | ')}`);
  return { sent: Number(m[1]), seconds: Number(m[2]) };
}

interface Capturer {
  tool: string;
  /** Starts capturing on A's end; `stop` ends it and returns what it counted. */
  start(net: NsPair): Promise<{ stop: () => Promise<{ captured: number; drops: number; detail: string }> }>;
}

/** Waits for a child, SIGKILLing it after `ms`. */
async function ended(child: ReturnType<NsPair['spawnIn']>, done: Promise<{ code: number | null }>, ms: number): Promise<number | null> {
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  try {
    return (await done).code;
  } finally {
    clearTimeout(timer);
  }
}

function flowlensCapturer(bufferMb: number | undefined, workers: number | undefined): Capturer {
  const fl = flowlensCommand('auto');
  return {
    tool: 'flowlens',
    async start(net) {
      const dir = mkdtempSync(join(tmpdir(), 'flowlens-live-bench-'));
      // DPI and detection stay on (capture's defaults): the target is for the whole pipeline.
      const extra = [...(bufferMb ? ['--buffer-mb', String(bufferMb)] : []), ...(workers ? ['--workers', String(workers)] : [])];
      const child = net.spawnIn(net.nsA, [fl.cmd, ...fl.args, 'capture', '-i', net.vethA, '--db', join(dir, 'live.duckdb'), '--json', ...extra], {
        cwd: REPO_ROOT,
        env: { ...process.env, FLOWLENS_LOG_FORMAT: 'json', NO_COLOR: '1' },
      });
      const out = collect(child);
      try {
        await waitForOutput(child, /decode worker/, 30_000);
      } catch (err) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
      await sleep(300);
      return {
        stop: async () => {
          try {
            child.kill('SIGINT');
            const code = await ended(child, out.done, 60_000);
            const last = out.stdout().trim().split('\n').pop() ?? '';
            let s: { packets: number; drops: number; ringPeakFill: number[]; interfaces: { kernelDrops: number; ifDrops: number; ringDrops: number }[] };
            try {
              s = JSON.parse(last) as typeof s;
            } catch {
              throw new Error(`flowlens capture gave no JSON summary (exit ${code}): ${out.stderr().slice(-1000)}`);
            }
            const i = s.interfaces[0];
            // The ring's high-water mark: how close a clean step came to dropping.
            const peak = s.ringPeakFill.map((f) => `${Math.round(f * 100)}%`).join('/');
            return { captured: s.packets, drops: s.drops, detail: `kernel ${i.kernelDrops}, interface ${i.ifDrops}, ring ${i.ringDrops}; ring peak ${peak}` };
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        },
      };
    },
  };
}

const tcpdumpCapturer: Capturer = {
  tool: 'tcpdump',
  async start(net) {
    const child = net.spawnIn(net.nsA, ['tcpdump', '-i', net.vethA, '-w', '/dev/null']);
    const out = collect(child);
    await waitForOutput(child, /listening on/, 30_000);
    await sleep(300);
    return {
      stop: async () => {
        child.kill('SIGINT');
        const code = await ended(child, out.done, 30_000);
        const err = out.stderr();
        const captured = /(\d+) packets? captured/.exec(err)?.[1];
        const dropped = /(\d+) packets? dropped by kernel/.exec(err)?.[1];
        if (captured === undefined || dropped === undefined) throw new Error(`tcpdump printed no statistics (exit ${code}): ${err.slice(-1000)}`);
        return { captured: Number(captured), drops: Number(dropped), detail: `kernel ${dropped}` };
      },
    };
  },
};

async function step(net: NsPair, c: Capturer, file: string, packets: number, rate: number, seconds: number): Promise<LiveStep> {
  const cap = await c.start(net);
  let sent: { sent: number; seconds: number };
  try {
    sent = await replay(net, file, packets, rate, seconds);
  } catch (err) {
    await cap.stop().catch(() => undefined);
    throw err;
  }
  // Let the capture read what is still buffered before it is stopped.
  await sleep(1000);
  const got = await cap.stop();
  const unaccounted = sent.sent - got.captured - got.drops;
  return {
    rate,
    sent: sent.sent,
    sendSeconds: sent.seconds,
    captured: got.captured,
    drops: got.drops,
    detail: got.detail,
    unaccounted,
    clean: got.drops === 0 && got.captured >= sent.sent,
  };
}

const k = (n: number) => (n >= 1000 ? `${Math.round(n / 1000)}k` : String(n));
const rateName = (s: LiveStep) => (s.rate === 0 ? 'topspeed' : `${k(s.rate)} pps`);
const capturedPps = (s: LiveStep) => s.captured / s.sendSeconds;

export async function runLiveBench(opts: LiveBenchOptions): Promise<LiveBenchResult> {
  const t0 = Date.now();
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const result: LiveBenchResult = { tools: [], seconds: 0 };
  const why = netnsUnavailable() ?? (missingTool('tcpreplay', 'tcpdump', 'editcap') ? `needs ${missingTool('tcpreplay', 'tcpdump', 'editcap')}` : null);
  if (why) {
    result.skipped = why;
    return result;
  }
  const quick = opts.quick ?? false;
  const packets = opts.packets ?? 300_000;
  const seconds = opts.stepSeconds ?? (quick ? 4 : 8);
  const rates = [...(opts.rates ?? (quick ? QUICK_RATES : FULL_RATES))].sort((a, b) => b - a);
  const budget = opts.budgetMs ?? (quick ? 120_000 : 210_000);
  const buildError = ensureBuilt();
  if (buildError) log(`WARNING: ${buildError}`);
  result.flowlensHow = flowlensCommand('auto').how;
  result.stepSeconds = seconds;
  result.workers = opts.workers ?? (Number(process.env.FLOWLENS_WORKERS) || undefined); // flowlens reads FLOWLENS_WORKERS too
  const loadBefore = loadavg()[0];
  const file = slice(opts.capture, packets);
  result.slice = file;
  result.packets = packets;

  const net = createNsPair();
  const cleanup = () => net.destroy();
  process.once('exit', cleanup);
  try {
    // Frames of the capture reach 37 KB (offloaded segments): room for them on the veth.
    for (const [ns, dev] of [
      [net.nsA, net.vethA],
      [net.nsB, net.vethB],
    ]) {
      const r = spawnSync('ip', ['-n', ns, 'link', 'set', dev, 'mtu', '65535'], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`ip link set mtu failed: ${r.stderr}`);
    }
    for (const c of [flowlensCapturer(opts.bufferMb, opts.workers), tcpdumpCapturer]) {
      const res: LiveToolResult = { tool: c.tool, steps: [] };
      result.tools.push(res);
      const run = async (rate: number) => {
        const s = await step(net, c, file, packets, rate, seconds);
        res.steps.push(s);
        log(
          `  live ${c.tool} ${rateName(s)}: sent ${s.sent} in ${s.sendSeconds.toFixed(2)} s, captured ${s.captured} (${Math.round(capturedPps(s))}/s), dropped ${s.drops} (${s.detail})${s.unaccounted > 0 ? `, ${s.unaccounted} unaccounted` : ''}`,
        );
        return s;
      };
      try {
        const top = await run(0);
        res.topspeed = top;
        if (top.clean) {
          res.best = top;
          continue;
        }
        // Rates the sender reached at all, highest first, until one passes; below the lowest step
        // (a loaded machine: the sender itself slow), fractions of what it reached.
        const reached = top.sent / top.sendSeconds;
        const below = rates.filter((r) => r < reached);
        const fractions = [0.7, 0.5, 0.3, 0.15].map((f) => Math.max(1000, Math.round((reached * f) / 1000) * 1000));
        const tries = [...new Set([...below, ...fractions.filter((r) => r < (below.at(-1) ?? reached))])];
        for (const rate of tries) {
          if (Date.now() - t0 > budget) {
            res.error = `time budget (${budget / 1000} s) spent before a clean step`;
            break;
          }
          const s = await run(rate);
          if (s.clean) {
            res.best = s;
            break;
          }
        }
      } catch (err) {
        res.error = err instanceof Error ? err.message : String(err);
      }
    }
  } finally {
    process.off('exit', cleanup);
    cleanup();
  }
  result.seconds = (Date.now() - t0) / 1000;
  result.loadAverage = [loadBefore, loadavg()[0]];
  return result;
}

export function formatLiveBench(r: LiveBenchResult): string {
  if (r.skipped) return `live capture: skipped (${r.skipped})`;
  const out: string[] = [];
  out.push(
    `live capture: tcpreplay of ${r.packets} packets (${basename(r.slice ?? '')}) into a veth, captured on its peer; ` +
      `fixed rates for ${r.stepSeconds} s each; flowlens as ${r.flowlensHow}, DPI and detection on, ${r.workers ?? 'default'} decode workers; ` +
      `${r.seconds.toFixed(0)} s; load average ${r.loadAverage ? r.loadAverage.map((l) => l.toFixed(1)).join(' -> ') : '?'} on ${availableParallelism()} cores`,
  );
  out.push(
    `${'tool'.padEnd(10)}${'zero-loss rate'.padStart(16)}${'captured/s'.padStart(12)}${'topspeed sent/s'.padStart(17)}${'captured/s'.padStart(12)}  drops at topspeed`,
  );
  for (const t of r.tools) {
    const b = t.best;
    const top = t.topspeed;
    out.push(
      `${t.tool.padEnd(10)}${(b ? rateName(b) : 'none').padStart(16)}${(b ? Math.round(capturedPps(b)).toLocaleString('en-US') : '-').padStart(12)}` +
        `${(top ? Math.round(top.sent / top.sendSeconds).toLocaleString('en-US') : '-').padStart(17)}${(top ? Math.round(capturedPps(top)).toLocaleString('en-US') : '-').padStart(12)}  ` +
        `${top ? `${top.drops} of ${top.sent} (${top.detail})${top.unaccounted > 0 ? `, ${top.unaccounted} unaccounted` : ''}` : '-'}${t.error ? `  FAILED: ${t.error}` : ''}`,
    );
  }
  const f = r.tools.find((t) => t.tool === 'flowlens')?.best;
  const d = r.tools.find((t) => t.tool === 'tcpdump')?.best;
  out.push(`flowlens/tcpdump zero-loss captured pps: ${f && d ? (capturedPps(f) / capturedPps(d)).toFixed(3) : 'n/a'}`);
  const top = r.tools.find((t) => t.tool === 'flowlens')?.topspeed;
  if (top) out.push(`target: no drops at tcpreplay --topspeed with DPI and detection on: ${top.drops === 0 && top.unaccounted <= 0 ? 'PASS' : 'MISS'}`);
  out.push('(a rate passes when nothing is dropped and every packet sent is captured; tcpreplay shares the CPUs with the tool under test)');
  if (r.tools.some((t) => t.best && t.best.rate === 0)) {
    out.push('(clean at topspeed: the sender was the limit, so that rate is a floor of what the tool captures without loss)');
  }
  return out.join('\n');
}
