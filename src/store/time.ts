// Time as records carry it (µs since the epoch) in text.

/** ISO 8601 with microseconds, UTC: 2024-05-01T12:00:00.123456Z. */
export function isoMicros(us: number): string {
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString(); // ...ss.mmmZ
  const micros = String(Math.floor(us) % 1000).padStart(3, '0');
  return `${iso.slice(0, -1)}${micros}Z`;
}
