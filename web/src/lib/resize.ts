// An element's width as it changes (charts drawn to fit their container).

/** Calls `set` with the element's width (at least `min`) now and on every resize; returns the stop. */
export function trackWidth(el: HTMLElement, set: (width: number) => void, min = 320): () => void {
  const measure = () => set(Math.max(min, Math.floor(el.clientWidth)));
  measure();
  const ro = new ResizeObserver(measure);
  ro.observe(el);
  return () => ro.disconnect();
}
