/**
 * Tests' oracle for summing a flow's segments: each column by its definition's combine rule
 * (src/records/define.ts), written plainly here so that the stores' SQL and cache are checked
 * against an independent reading of the rules, and so that a new column needs no edit in tests.
 */
import { type AnyRecordDef, FLOW, type FlowRecord, type FlowSummary } from '../../src/records/index.js';

/** Sums one flow's segments (any order) by the combine rules of `def`'s summary columns. */
export function combineSegments<S>(def: AnyRecordDef, segments: readonly Record<string, unknown>[]): S {
  const segs = [...segments].sort((a, b) => (a.ts as number) - (b.ts as number));
  const out: Record<string, unknown> = {};
  for (const c of def.summary) {
    const values = segs.map((s) => s[c.field]);
    switch (c.combine) {
      case 'key':
      case 'first':
        out[c.field] = values[0];
        break;
      case 'sum':
        out[c.field] = (values as number[]).reduce((a, b) => a + b, 0);
        break;
      case 'bitOr':
        out[c.field] = (values as number[]).reduce((a, b) => a | b, 0);
        break;
      case 'min':
        out[c.field] = Math.min(...(values as number[]));
        break;
      case 'max':
        out[c.field] = Math.max(...(values as number[]));
        break;
      case 'latest':
        out[c.field] = values[values.length - 1];
        break;
      case 'latestNonEmpty':
        out[c.field] = [...(values as string[])].reverse().find((v) => v !== '') ?? '';
        break;
      default:
        throw new Error(`no combine rule for ${c.field}`);
    }
  }
  return out as S;
}

/** A flow summary from its segments (see combineSegments). */
export function flowSummary(segments: readonly FlowRecord[]): FlowSummary {
  return combineSegments<FlowSummary>(FLOW, segments as unknown as Record<string, unknown>[]);
}

/** A record of `def` with every column empty ('' / 0 / false), then `fields`: new columns need no edit in tests. */
export function emptyRecord<R>(def: AnyRecordDef, fields: Partial<R>): R {
  const empty: Record<string, unknown> = {};
  for (const c of def.list) empty[c.field] = c.type === 'str' ? '' : c.type === 'bool' ? false : 0;
  return { ...empty, ...fields } as R;
}
