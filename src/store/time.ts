// Time as records carry it (µs since the epoch) in text.

/** The last second formatted, "2024-05-01T12:00:00.": a page of flows falls in few seconds. */
let lastSecond = Number.NaN;
let lastPrefix = '';

/** ISO 8601 with microseconds, UTC: 2024-05-01T12:00:00.123456Z. */
export function isoMicros(us: number): string {
  const whole = Math.floor(us);
  const second = Math.floor(whole / 1_000_000);
  if (second !== lastSecond) {
    lastPrefix = new Date(second * 1000).toISOString().slice(0, -4); // drop "mmmZ"
    lastSecond = second;
  }
  return `${lastPrefix}${String(whole - second * 1_000_000).padStart(6, '0')}Z`;
}
