// The domain: records as data (define.ts), the records themselves and the status types.
export * from './anomaly.js';
export * from './define.js';
export * from './flow.js';
export * from './host.js';
export * from './columns.js';
export type * from './status.js';

import { ANOMALY } from './anomaly.js';
import { FLOW } from './flow.js';
import { HOST, TRAFFIC } from './host.js';

/** Every stored record, in DDL order. */
export const RECORDS = [FLOW, HOST, TRAFFIC, ANOMALY] as const;
