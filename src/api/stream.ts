// Async iterators for GraphQL subscriptions, fed by push sources (the event bus, the import
// manager). Subscribers read at their own pace, so every queue here is bounded: a slow client
// loses events (counted in the metrics) instead of growing the server's memory.
import type { BusEvents, EventBus, FlowEvent, Topic } from '../bus/types.js';

export interface PushIterator<T> extends AsyncIterableIterator<T> {
  push(value: T): void;
  /** Values waiting to be read. */
  size(): number;
}

/**
 * An async iterator over values pushed into it. `onClose` runs once, when the consumer stops
 * (client unsubscribes or disconnects) — that is where the source handler is removed.
 * When more than `capacity` values wait, the oldest is dropped and `onDrop` is called.
 */
export function pushIterator<T>(opts: { capacity: number; onClose: () => void; onDrop?: () => void }): PushIterator<T> {
  const queue: T[] = [];
  let waiting: ((r: IteratorResult<T>) => void) | null = null;
  let closed = false;
  const close = (): IteratorResult<T> => {
    if (!closed) {
      closed = true;
      queue.length = 0;
      opts.onClose();
      waiting?.({ value: undefined, done: true });
      waiting = null;
    }
    return { value: undefined, done: true };
  };
  const it: PushIterator<T> = {
    push(value: T) {
      if (closed) return;
      if (waiting) {
        const w = waiting;
        waiting = null;
        w({ value, done: false });
        return;
      }
      queue.push(value);
      if (queue.length > opts.capacity) {
        queue.shift();
        opts.onDrop?.();
      }
    },
    size: () => queue.length,
    next() {
      if (queue.length > 0) return Promise.resolve({ value: queue.shift() as T, done: false });
      if (closed) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => (waiting = resolve));
    },
    return() {
      return Promise.resolve(close());
    },
    throw(err?: unknown) {
      close();
      return Promise.reject(err);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return it;
}

/**
 * Coalesces flow events per flow: during an import the pipeline publishes an update per flow per
 * second of *packet* time, which can be thousands per wall-clock second. Each flow is emitted at
 * most once per tick, with its latest state; a pending 'start' or 'end' is not hidden by a later
 * 'update' (a start followed by an end within one tick is emitted as the end).
 * Events are only moved to the output when the consumer has read the previous tick's, so a slow
 * consumer sees fresher states, not a backlog; distinct pending flows are capped at `maxPending`.
 */
export class FlowCoalescer {
  private pending = new Map<string, FlowEvent>();
  private readonly timer: NodeJS.Timeout;
  private readonly maxPending: number;
  private readonly onDrop: () => void;
  readonly output: PushIterator<FlowEvent>;

  constructor(opts: { tickMs: number; maxPending: number; onClose: () => void; onDrop: () => void }) {
    this.maxPending = opts.maxPending;
    this.onDrop = opts.onDrop;
    this.output = pushIterator<FlowEvent>({
      // At most one tick's worth waits (see `tick`), itself capped at maxPending.
      capacity: opts.maxPending,
      onClose: () => {
        clearInterval(this.timer);
        this.pending.clear();
        opts.onClose();
      },
      onDrop: opts.onDrop,
    });
    this.timer = setInterval(() => this.tick(), opts.tickMs);
    this.timer.unref();
  }

  add(event: FlowEvent): void {
    const id = event.flow.flowId;
    const prev = this.pending.get(id);
    if (prev === undefined) {
      if (this.pending.size >= this.maxPending) {
        this.onDrop();
        return;
      }
      this.pending.set(id, event);
      return;
    }
    const type = event.type === 'end' ? 'end' : prev.type === 'start' ? 'start' : event.type;
    this.pending.set(id, { type, flow: event.flow });
  }

  private tick(): void {
    // The consumer has not read the last tick yet: keep coalescing instead of queueing more.
    if (this.output.size() > 0 || this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    for (const e of batch.values()) this.output.push(e);
  }
}

/**
 * A subscription's iterator over a push source: `listen` registers the handler and returns the
 * function that removes it, which runs when the client stops. `map` returns undefined for values
 * the subscriber did not ask for.
 */
export function sourceIterator<E, R>(
  listen: (handler: (e: E) => void) => () => void,
  opts: { capacity: number; map: (e: E) => R | undefined; onDrop: () => void; onClose: () => void },
): PushIterator<R> {
  let unsubscribe = () => {};
  const it = pushIterator<R>({
    capacity: opts.capacity,
    onDrop: opts.onDrop,
    onClose: () => {
      unsubscribe();
      opts.onClose();
    },
  });
  unsubscribe = listen((e) => {
    const value = opts.map(e);
    if (value !== undefined) it.push(value);
  });
  return it;
}

/** sourceIterator over one bus topic. */
export function busIterator<T extends Topic, R>(
  bus: EventBus,
  topic: T,
  opts: { capacity: number; map: (e: BusEvents[T]) => R | undefined; onDrop: () => void; onClose: () => void },
): PushIterator<R> {
  return sourceIterator<BusEvents[T], R>((handler) => bus.subscribe(topic, handler), opts);
}
