// Opaque pagination cursors shared by every back end: base64url of the sort key of the last row
// returned. A cursor is bound to the order it was made for; using it with another order is an error.
import { StoreQueryError, type FlowOrder } from './types.js';

export interface CursorKey {
  order: FlowOrder;
  /** firstSeen (µs) for 'time', total bytes for 'bytes'. */
  value: number;
  flowId: string;
}

export function encodeCursor(key: CursorKey): string {
  return Buffer.from(JSON.stringify([key.order, key.value, key.flowId])).toString('base64url');
}

export function decodeCursor(cursor: string, order: FlowOrder): CursorKey {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new StoreQueryError('invalid cursor');
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 3 ||
    (parsed[0] !== 'time' && parsed[0] !== 'bytes') ||
    typeof parsed[1] !== 'number' ||
    // Both sort keys (firstSeen µs, total bytes) are non-negative integers that a JS number holds exactly.
    !Number.isSafeInteger(parsed[1]) ||
    parsed[1] < 0 ||
    typeof parsed[2] !== 'string' ||
    !/^[0-9a-f]{16}$/.test(parsed[2])
  ) {
    throw new StoreQueryError('invalid cursor');
  }
  if (parsed[0] !== order) throw new StoreQueryError(`cursor was made for order ${parsed[0]}, not ${order}`);
  return { order, value: parsed[1], flowId: parsed[2] };
}
