// The in-process event bus: synchronous fan-out to handlers in this process.
import type { BusEvents, EventBus, Topic } from './types.js';

export class MemoryBus implements EventBus {
  private readonly handlers: { [T in Topic]: Set<(e: BusEvents[T]) => void> } = {
    flow: new Set(),
    traffic: new Set(),
    anomaly: new Set(),
  };

  publish<T extends Topic>(topic: T, event: BusEvents[T]): void {
    for (const handler of this.handlers[topic] as Set<(e: BusEvents[T]) => void>) {
      try {
        handler(event);
      } catch {
        // A failing subscriber must not break the pipeline or the other subscribers.
      }
    }
  }

  subscribe<T extends Topic>(topic: T, handler: (event: BusEvents[T]) => void): () => void {
    const set = this.handlers[topic] as Set<(e: BusEvents[T]) => void>;
    set.add(handler);
    return () => set.delete(handler);
  }

  hasSubscribers(topic: Topic): boolean {
    return this.handlers[topic].size > 0;
  }

  async close(): Promise<void> {
    for (const set of Object.values(this.handlers)) set.clear();
  }
}
