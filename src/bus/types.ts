// Live events from the pipeline to API subscribers. In one process the bus is in memory
// (src/bus/memory.ts); the fleet puts NATS behind the same interface.
import type { AnomalyRecord, FlowSummary, TrafficPoint } from '../store/types.js';

/** A flow as of now (cumulative counts since it started). */
export interface FlowEvent {
  type: 'start' | 'update' | 'end';
  flow: FlowSummary;
}

/** Traffic in one aggregation interval, sent when the interval closes. */
export interface TrafficEvent {
  node: string;
  /** Width of the interval (µs). */
  step: number;
  point: TrafficPoint;
}

export interface AnomalyEvent {
  type: 'start' | 'update' | 'end';
  anomaly: AnomalyRecord;
}

export interface BusEvents {
  flow: FlowEvent;
  traffic: TrafficEvent;
  anomaly: AnomalyEvent;
}

export type Topic = keyof BusEvents;

export interface EventBus {
  publish<T extends Topic>(topic: T, event: BusEvents[T]): void;
  /** Returns the unsubscribe function. */
  subscribe<T extends Topic>(topic: T, handler: (event: BusEvents[T]) => void): () => void;
  /** True when anyone listens on the topic: publishers skip building events nobody reads. */
  hasSubscribers(topic: Topic): boolean;
  close(): Promise<void>;
  /** Received messages dropped because they were not valid events, by reason (a networked bus). */
  droppedInvalid?(): Record<string, number>;
  /** Publishes the bus server refused, by subject (a networked bus with permissions). */
  refusedPublishes?(): Record<string, number>;
}
