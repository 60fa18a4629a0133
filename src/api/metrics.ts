// Counters and gauges for /metrics, in the Prometheus text exposition format (version 0.0.4).
// Only figures this process really knows: imports through this server, GraphQL operations,
// live subscriptions, events dropped for slow subscribers, and the store's health at scrape time.

type Labels = Record<string, string>;

interface Series {
  labels: Labels;
  value: number;
}

interface Metric {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  series: Map<string, Series>;
  /** Gauges read at scrape time. */
  collect?: () => number | Promise<number>;
  /** Series read at scrape time, by label: counters kept by another component. */
  collectSeries?: () => Series[];
}

export class Metrics {
  private readonly metrics = new Map<string, Metric>();

  counter(name: string, help: string): (by?: number, labels?: Labels) => void {
    const m = this.define(name, help, 'counter');
    return (by = 1, labels = {}) => this.add(m, labels, by);
  }

  gauge(
    name: string,
    help: string,
    collect?: () => number | Promise<number>,
  ): { set: (v: number, labels?: Labels) => void; add: (by: number, labels?: Labels) => void } {
    const m = this.define(name, help, 'gauge');
    m.collect = collect;
    return {
      set: (v, labels = {}) => {
        m.series.set(key(labels), { labels, value: v });
      },
      add: (by, labels = {}) => this.add(m, labels, by),
    };
  }

  /** A counter another component keeps, read at scrape time with its labels. */
  counterFrom(name: string, help: string, collect: () => Series[]): void {
    this.define(name, help, 'counter').collectSeries = collect;
  }

  /** A gauge another component keeps, read at scrape time with its labels. */
  gaugeFrom(name: string, help: string, collect: () => Series[]): void {
    this.define(name, help, 'gauge').collectSeries = collect;
  }

  /** The current value of a series (tests, status). */
  value(name: string, labels: Labels = {}): number {
    return this.metrics.get(name)?.series.get(key(labels))?.value ?? 0;
  }

  async render(): Promise<string> {
    const out: string[] = [];
    for (const m of this.metrics.values()) {
      if (m.collectSeries) {
        m.series.clear();
        for (const s of m.collectSeries()) m.series.set(key(s.labels), s);
      }
      if (m.collect) {
        try {
          m.series.set('', { labels: {}, value: await m.collect() });
        } catch {
          m.series.delete(''); // an unknown value is left out rather than reported as 0
        }
      }
      out.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`);
      if (m.series.size === 0 && m.type === 'counter') out.push(`${m.name} 0`);
      for (const s of m.series.values()) out.push(`${m.name}${formatLabels(s.labels)} ${s.value}`);
    }
    return `${out.join('\n')}\n`;
  }

  private define(name: string, help: string, type: Metric['type']): Metric {
    if (this.metrics.has(name)) throw new Error(`metric ${name} defined twice`);
    const m: Metric = { name, help, type, series: new Map() };
    this.metrics.set(name, m);
    return m;
  }

  private add(m: Metric, labels: Labels, by: number): void {
    const k = key(labels);
    const s = m.series.get(k);
    if (s) s.value += by;
    else m.series.set(k, { labels, value: by });
  }
}

function key(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

function formatLabels(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  const escapeValue = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
  return `{${keys.map((k) => `${k}="${escapeValue(labels[k])}"`).join(',')}}`;
}
