// The Explore page's Sankey of a pair of dimensions, laid out as a pure function (tested in node):
// the first dimension's values are nodes on the left, the second's on the right, and each item (a
// pair of values) is a band between them whose width is proportional to its value. Both columns
// hold the same total (the sum of the items), so one scale serves both: a node is as tall as the
// sum of its bands.

export interface SankeyItem {
  /** The pair of values, [left, right]. */
  keys: readonly string[];
  /** Bytes, packets or flows: the band's width is proportional to it. */
  value: number;
}

export interface SankeyNode {
  /** 0: the first dimension (left), 1: the second (right). */
  side: 0 | 1;
  key: string;
  /** The sum of its bands. */
  value: number;
  x: number;
  y: number;
  /** Height: value × scale. */
  h: number;
}

export interface SankeyLink {
  /** Indexes into `nodes`. */
  source: number;
  target: number;
  value: number;
  /** Top of the band where it leaves the left node and where it enters the right one. */
  sy: number;
  ty: number;
  /** Thickness: value × scale. */
  w: number;
  /** The band as a closed SVG path (two cubic curves joined by the node edges). */
  path: string;
}

export interface SankeyLayout {
  width: number;
  height: number;
  /** Pixels per unit of value. */
  scale: number;
  total: number;
  /** Left nodes first, top to bottom, then right nodes, top to bottom. */
  nodes: SankeyNode[];
  /** In the order of the items given (zero and negative values left out). */
  links: SankeyLink[];
}

export interface SankeyOptions {
  width: number;
  height: number;
  /** Width of a node's bar. */
  nodeWidth?: number;
  /** Vertical gap between two nodes of a column: at least a line of label, so that labels do not overlap. */
  nodePadding?: number;
  /** Room for the labels outside each column (left of the left nodes, right of the right ones). */
  labelWidth?: number;
}

export const SANKEY_DEFAULTS = { nodeWidth: 12, nodePadding: 16, labelWidth: 180 } as const;

const r2 = (n: number) => Math.round(n * 100) / 100;

/** The height a Sankey needs so that every node of the longer column has a readable slot. */
export function sankeyHeight(items: readonly SankeyItem[], rowHeight = 28, min = 220): number {
  const left = new Set(items.map((i) => i.keys[0]));
  const right = new Set(items.map((i) => i.keys[1]));
  return Math.max(min, Math.max(left.size, right.size) * rowHeight + 24);
}

/**
 * Lays out the items (each a pair of values and its measure). Left nodes are ordered by value
 * (largest first, ties by key); right nodes by the weighted mean position of their sources (fewer
 * crossings), then by value and key. Each column is centred vertically; a node's bands are stacked
 * in the order of the nodes at their other end.
 */
export function sankeyLayout(items: readonly SankeyItem[], opts: SankeyOptions): SankeyLayout {
  const nodeWidth = opts.nodeWidth ?? SANKEY_DEFAULTS.nodeWidth;
  const pad = opts.nodePadding ?? SANKEY_DEFAULTS.nodePadding;
  const labelWidth = opts.labelWidth ?? SANKEY_DEFAULTS.labelWidth;
  const { width, height } = opts;

  // Sum duplicates (the API answers each pair once, but the layout does not depend on it).
  const pairs = new Map<string, { left: string; right: string; value: number; order: number }>();
  for (const item of items) {
    if (!(item.value > 0)) continue;
    const [left, right] = [item.keys[0] ?? '', item.keys[1] ?? ''];
    const id = JSON.stringify([left, right]);
    const p = pairs.get(id);
    if (p) p.value += item.value;
    else pairs.set(id, { left, right, value: item.value, order: pairs.size });
  }
  const links0 = [...pairs.values()];
  const total = links0.reduce((n, l) => n + l.value, 0);

  const sums = (side: 'left' | 'right') => {
    const m = new Map<string, number>();
    for (const l of links0) m.set(l[side], (m.get(l[side]) ?? 0) + l.value);
    return m;
  };
  const leftSums = sums('left');
  const rightSums = sums('right');
  const byValue = (m: Map<string, number>) => (a: string, b: string) => m.get(b)! - m.get(a)! || (a < b ? -1 : a > b ? 1 : 0);
  const leftKeys = [...leftSums.keys()].sort(byValue(leftSums));
  const leftRank = new Map(leftKeys.map((k, i) => [k, i]));
  const centre = new Map<string, number>();
  for (const l of links0) centre.set(l.right, (centre.get(l.right) ?? 0) + leftRank.get(l.left)! * l.value);
  const rightKeys = [...rightSums.keys()].sort((a, b) => centre.get(a)! / rightSums.get(a)! - centre.get(b)! / rightSums.get(b)! || byValue(rightSums)(a, b));
  const rightRank = new Map(rightKeys.map((k, i) => [k, i]));

  // One scale for both columns: the one the more crowded column allows.
  const room = (n: number) => Math.max(0, height - pad * Math.max(0, n - 1));
  const scale = total > 0 ? Math.min(room(leftKeys.length), room(rightKeys.length)) / total : 0;

  const nodes: SankeyNode[] = [];
  const column = (keys: string[], m: Map<string, number>, side: 0 | 1, x: number) => {
    const used = total * scale + pad * Math.max(0, keys.length - 1);
    let y = Math.max(0, (height - used) / 2);
    for (const key of keys) {
      const value = m.get(key)!;
      nodes.push({ side, key, value, x, y: r2(y), h: r2(value * scale) });
      y += value * scale + pad;
    }
  };
  const xLeft = Math.min(labelWidth, Math.max(0, (width - nodeWidth * 2) / 2));
  const xRight = Math.max(xLeft + nodeWidth, width - labelWidth - nodeWidth);
  column(leftKeys, leftSums, 0, xLeft);
  column(rightKeys, rightSums, 1, xRight);
  const leftIndex = (k: string) => leftRank.get(k)!;
  const rightIndex = (k: string) => leftKeys.length + rightRank.get(k)!;

  // Bands stacked within each node in the order of the nodes at the other end.
  const sy = new Map<(typeof links0)[number], number>();
  const ty = new Map<(typeof links0)[number], number>();
  const stack = (ordered: typeof links0, end: 'left' | 'right', at: Map<(typeof links0)[number], number>) => {
    const next = new Map<string, number>();
    for (const l of ordered) {
      const node = nodes[end === 'left' ? leftIndex(l.left) : rightIndex(l.right)];
      const y = next.get(node.key) ?? node.y;
      at.set(l, y);
      next.set(node.key, y + l.value * scale);
    }
  };
  stack(
    [...links0].sort((a, b) => rightRank.get(a.right)! - rightRank.get(b.right)!),
    'left',
    sy,
  );
  stack(
    [...links0].sort((a, b) => leftRank.get(a.left)! - leftRank.get(b.left)!),
    'right',
    ty,
  );

  const x0 = xLeft + nodeWidth;
  const x1 = xRight;
  const xm = (x0 + x1) / 2;
  const links = links0.map((l): SankeyLink => {
    const w = l.value * scale;
    const a = sy.get(l)!;
    const b = ty.get(l)!;
    const path =
      `M${r2(x0)},${r2(a)}C${r2(xm)},${r2(a)} ${r2(xm)},${r2(b)} ${r2(x1)},${r2(b)}` +
      `L${r2(x1)},${r2(b + w)}C${r2(xm)},${r2(b + w)} ${r2(xm)},${r2(a + w)} ${r2(x0)},${r2(a + w)}Z`;
    return { source: leftIndex(l.left), target: rightIndex(l.right), value: l.value, sy: r2(a), ty: r2(b), w: r2(w), path };
  });
  return { width, height, scale, total, nodes, links };
}

/** A label cut to `max` characters with an ellipsis (the whole one goes in the title). */
export function shortLabel(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, Math.max(1, max - 1))}…`;
}
