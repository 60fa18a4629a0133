// Formatting of counts, rates, times and durations for display. Pure functions (tested in node).

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

/** 1234567 → "1.23 MB" (decimal units, as network tools count). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '–';
  let i = 0;
  let v = Math.abs(n);
  while (v >= 1000 && i < UNITS.length - 1) {
    v /= 1000;
    i++;
  }
  const text = i === 0 ? String(Math.round(v)) : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return `${n < 0 ? '-' : ''}${text} ${UNITS[i]}`;
}

export function formatRate(bytesPerSec: number): string {
  return `${formatBytes(bytesPerSec)}/s`;
}

/** A measured value: integers grouped ("12,345"), fractions to 3 significant digits, huge ones in e-notation. */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return '–';
  if (Math.abs(n) >= 1e15) return n.toExponential(3);
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString('en-US');
  return String(Number(n.toPrecision(3)));
}

/** A per-second rate of small counts: "0.25", "3.5", "1,204". */
export function formatPerSecond(n: number): string {
  if (!Number.isFinite(n)) return '–';
  if (n === 0 || Math.abs(n) >= 100) return Math.round(n).toLocaleString('en-US');
  return String(Number(n.toPrecision(2)));
}

/** 12345 → "12,345". */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return '–';
  return Math.round(n).toLocaleString('en-US');
}

/** A DateTime from the API (ISO with µs) → ms since the epoch. */
export function parseTime(iso: string): number {
  return Date.parse(iso.replace(/(\.\d{3})\d+/, '$1'));
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Local time "HH:MM:SS", with the date when it is not today. */
export function formatTime(ms: number, now = Date.now()): string {
  const d = new Date(ms);
  const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const today = new Date(now);
  if (d.getFullYear() === today.getFullYear() && d.getMonth() === today.getMonth() && d.getDate() === today.getDate()) return t;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${t}`;
}

/** 0.0042 → "4 ms", 75 → "1m 15s", 7300 → "2h 1m". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

const FLAG_NAMES = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'];

/** TCP flags seen (OR of the header bits) → "SYN ACK FIN". */
export function tcpFlags(bits: number): string {
  const names = FLAG_NAMES.filter((_, i) => bits & (1 << i));
  return names.length ? names.join(' ') : '–';
}

export function endpoint(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
