// Windowing for long lists with fixed row heights: which rows to render for a scroll position,
// so a table of many thousands of flows keeps only a screenful of rows in the DOM.

export interface VisibleRange {
  /** First row index to render (inclusive). */
  start: number;
  /** Row index to stop before (exclusive). */
  end: number;
  /** Pixels above the first rendered row (its top offset). */
  offsetTop: number;
  /** Height of all rows together, for the scroll area. */
  totalHeight: number;
}

export function visibleRange(o: { scrollTop: number; viewportHeight: number; rowHeight: number; count: number; overscan?: number }): VisibleRange {
  const overscan = o.overscan ?? 8;
  const count = Math.max(0, Math.floor(o.count));
  const rowHeight = Math.max(1, o.rowHeight);
  const totalHeight = count * rowHeight;
  if (count === 0) return { start: 0, end: 0, offsetTop: 0, totalHeight: 0 };
  const maxScroll = Math.max(0, totalHeight - o.viewportHeight);
  const scrollTop = Math.min(Math.max(0, o.scrollTop), maxScroll);
  const first = Math.floor(scrollTop / rowHeight);
  const visible = Math.ceil(Math.max(0, o.viewportHeight) / rowHeight) + 1;
  const start = Math.max(0, first - overscan);
  const end = Math.min(count, first + visible + overscan);
  return { start, end, offsetTop: start * rowHeight, totalHeight };
}

/** scrollTop that brings row `index` into view (unchanged when it is visible already). */
export function scrollToRow(index: number, o: { scrollTop: number; viewportHeight: number; rowHeight: number }): number {
  const top = index * o.rowHeight;
  if (top < o.scrollTop) return top;
  const bottom = top + o.rowHeight;
  if (bottom > o.scrollTop + o.viewportHeight) return bottom - o.viewportHeight;
  return o.scrollTop;
}
