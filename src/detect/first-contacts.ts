// Per slot of a scan detector's table (lru-slots.ts): the distinct numbers that have had a first
// contact, ports of a port-scan pair or hosts of a host-scan walk, up to a cap. Most pairs and
// walks of ordinary traffic only ever see one, so the first is kept in a typed array and a Set is
// made only for a second.
import { growFloat64 } from '../flow/open-index.js';

export class FirstContacts {
  /** The first number per slot; NaN: none yet. */
  private first = new Float64Array(0);
  private more: (Set<number> | null)[] = [];

  /** `max`: numbers remembered per slot; past it, one not remembered counts as new every time. */
  constructor(private readonly max: number) {}

  /** Makes room for n slots. */
  grow(n: number): void {
    const had = this.more.length;
    this.first = growFloat64(this.first, n);
    this.first.fill(NaN, had);
    while (this.more.length < n) this.more.push(null);
  }

  /** Empties slot s for a new pair or walk. */
  clear(s: number): void {
    this.first[s] = NaN;
    this.more[s] = null;
  }

  clearAll(): void {
    this.more.fill(null);
  }

  /** False when slot s has seen x before; otherwise remembers it (if there is room) and returns true. */
  add(s: number, x: number): boolean {
    const more = this.more[s];
    if (more !== null) {
      if (more.has(x)) return false;
      if (more.size < this.max) more.add(x);
      return true;
    }
    const first = this.first[s];
    if (Number.isNaN(first)) {
      this.first[s] = x;
      return true;
    }
    if (first === x) return false;
    this.more[s] = new Set([first, x]);
    return true;
  }

  size(s: number): number {
    const more = this.more[s];
    if (more !== null) return more.size;
    return Number.isNaN(this.first[s]) ? 0 : 1;
  }
}
