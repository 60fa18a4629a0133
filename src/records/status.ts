// What the server knows about capture beyond the store: given to the server by whoever runs the
// capture (live capture, the fleet's bus). Domain types: capture and bus import them from here.

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
