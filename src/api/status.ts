// What the server knows about capture beyond the store: given to the server by whoever runs the
// capture. `flowlens serve` has no live capture yet, so its provider reports none; imports and
// store health come from the server itself.

export interface CaptureInterfaceStatus {
  name: string;
  node: string;
  packets: number;
  /** Packets the kernel or the capture buffer dropped. */
  drops: number;
}

export interface WorkerStatus {
  node: string;
  /** Last time the worker was heard from (µs). */
  lastSeen: number;
}

export interface StatusProvider {
  interfaces(): CaptureInterfaceStatus[];
  workers(): WorkerStatus[];
}

export const NO_LIVE_CAPTURE: StatusProvider = {
  interfaces: () => [],
  workers: () => [],
};
