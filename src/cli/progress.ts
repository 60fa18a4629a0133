// Progress of long work: a redrawn bar on a terminal, a plain log line every few seconds otherwise.
import type { Logger } from './logger.js';

export interface ProgressState {
  done: number;
  total: number;
  /** Items processed (packets), for the rate. */
  items: number;
  elapsedSec: number;
  label: string;
}

const BAR_WIDTH = 28;
const LOG_EVERY_MS = 5000;
const DRAW_EVERY_MS = 100;

export class Progress {
  /** Started now: the first plain progress line comes after LOG_EVERY_MS, not at 0%. */
  private lastDraw = Date.now();
  private drawn = false;

  constructor(
    private readonly logger: Logger,
    private readonly tty: boolean = Boolean(process.stderr.isTTY),
  ) {}

  update(s: ProgressState): void {
    const now = Date.now();
    if (now - this.lastDraw < (this.tty ? DRAW_EVERY_MS : LOG_EVERY_MS)) return;
    this.lastDraw = now;
    const fraction = s.total > 0 ? Math.min(1, s.done / s.total) : 0;
    const rate = s.elapsedSec > 0 ? s.items / s.elapsedSec : 0;
    const eta = fraction > 0 && fraction < 1 ? (s.elapsedSec / fraction) * (1 - fraction) : 0;
    if (this.tty) {
      const full = Math.round(fraction * BAR_WIDTH);
      const bar = '█'.repeat(full) + '░'.repeat(BAR_WIDTH - full);
      const line = `${bar} ${(fraction * 100).toFixed(0).padStart(3)}%  ${formatBytes(s.done)}/${formatBytes(s.total)}  ${formatCount(rate)} pkt/s  ETA ${formatDuration(eta)}  ${s.label}`;
      process.stderr.write(`\r\x1b[K${line}`);
      this.drawn = true;
    } else {
      this.logger.info(
        { percent: Math.round(fraction * 1000) / 10, bytesRead: s.done, totalBytes: s.total, packetsPerSecond: Math.round(rate), etaSeconds: Math.round(eta) },
        `progress ${(fraction * 100).toFixed(1)}% ${s.label}`,
      );
    }
  }

  /** Removes the bar before other output. */
  done(): void {
    if (this.drawn) process.stderr.write('\r\x1b[K');
    this.drawn = false;
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}

export function formatDuration(sec: number): string {
  if (sec < 60) return `${Math.ceil(sec)}s`;
  const m = Math.floor(sec / 60);
  return `${m}m${String(Math.ceil(sec - m * 60)).padStart(2, '0')}s`;
}
