// What the server knows about capture beyond the store: given to the server by whoever runs the
// capture. `flowlens serve` has no live capture yet, so its provider reports none; imports and
// store health come from the server itself.

import type { StatusProvider } from '../records/status.js';

export type { CaptureInterfaceStatus, StatusProvider, WorkerStatus } from '../records/status.js';

export const NO_LIVE_CAPTURE: StatusProvider = {
  interfaces: () => [],
  workers: () => [],
};
