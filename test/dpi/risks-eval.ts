// Compares flowlens's flow risks with nDPI's, flow by flow, over the nDPI corpus: only the risks
// flowlens reports (src/dpi/risks.ts RISK_NAMES that nDPI also has), on the flows both list. Each
// capture is imported through the library API into a write-only store that keeps the flow records.
//
//   node --import tsx test/dpi/risks-eval.ts [CAPTURE...]   prints the figures and every difference
//   import { evaluateRisks } ...                              used by test/dpi-risks.test.ts
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { importFiles } from '../../src/capture/import.js';
import { RISK_NAMES } from '../../src/dpi/risks.js';
import type { FlowRecord, RecordBatch, StoreWriter } from '../../src/store/types.js';
import { canonicalIp, corpusFiles, flowKey, parseListing } from './eval.js';

/** The risks both name (flowlens's own two, not-yet-valid and weak certificate, are not nDPI's). */
export const SHARED_RISKS: readonly string[] = RISK_NAMES.filter((r) => r !== 'TLS Cert Not Yet Valid' && r !== 'TLS Weak Cert Key or Signature');

export interface RiskFigures {
  /** Flows both list. */
  flows: number;
  /** Per risk: flows both flag, flows only nDPI flags, flows only flowlens flags. */
  perRisk: Record<string, { both: number; ndpiOnly: number; oursOnly: number }>;
  differences: string[];
}

export function flowCollector(into: FlowRecord[]): StoreWriter {
  return {
    backend: 'collect',
    init: async () => {},
    close: async () => {},
    health: async () => ({ backend: 'collect', ok: true }),
    beginRun: async () => {},
    write: async (batch: RecordBatch) => {
      for (const f of batch.flows) into.push(f);
    },
    flush: async () => {},
  };
}

/** Captures by name (all of the corpus when none are given). */
export async function evaluateRisks(names?: readonly string[]): Promise<RiskFigures> {
  const files = corpusFiles().filter((f) => names === undefined || names.includes(f.name));
  const out: RiskFigures = { flows: 0, perRisk: Object.fromEntries(SHARED_RISKS.map((r) => [r, { both: 0, ndpiOnly: 0, oursOnly: 0 }])), differences: [] };
  for (const file of files) {
    const records: FlowRecord[] = [];
    await importFiles([file.pcap], { store: flowCollector(records), node: file.name, iface: file.name, detect: false });
    // A flow's risks as of its latest segment that has any (the column's combine rule).
    const risksOf = new Map<string, string>();
    const keyOf = new Map<string, string>();
    for (const r of records) {
      keyOf.set(r.flowId, flowKey(r.transport, canonicalIp(r.clientIp), String(r.clientPort), canonicalIp(r.serverIp), String(r.serverPort)));
      if (r.risks !== '' || !risksOf.has(r.flowId)) risksOf.set(r.flowId, r.risks);
    }
    const byKey = new Map<string, string[]>();
    for (const [id, key] of keyOf) {
      let list = byKey.get(key);
      if (!list) byKey.set(key, (list = []));
      list.push(risksOf.get(id) ?? '');
    }
    for (const n of parseListing(file.name, readFileSync(file.listing, 'utf8'))) {
      const candidates = byKey.get(n.key);
      if (candidates === undefined) continue;
      const expected = new Set(n.risks.filter((r) => SHARED_RISKS.includes(r)));
      // Ports reused by several connections: the one whose risks agree, else the first. nDPI's
      // "TLS Cert Expired" is outside the validity either way, flowlens's also "Not Yet Valid".
      const mine = candidates.map((c) => new Set(c === '' ? [] : c.split(',').map((r) => (r === 'TLS Cert Not Yet Valid' ? 'TLS Cert Expired' : r))));
      const ours = mine.find((m) => SHARED_RISKS.every((r) => m.has(r) === expected.has(r))) ?? mine[0]!;
      out.flows++;
      for (const r of SHARED_RISKS) {
        const e = expected.has(r);
        const o = ours.has(r);
        if (e && o) out.perRisk[r]!.both++;
        else if (e) out.perRisk[r]!.ndpiOnly++;
        else if (o) out.perRisk[r]!.oursOnly++;
        if (e !== o) out.differences.push(`${file.name}: ${e ? 'missed' : 'extra'} "${r}": ${n.line}`);
      }
    }
  }
  return out;
}

export function reportRisks(r: RiskFigures): string {
  const lines = [`flows listed by both: ${r.flows}`, 'risk: both flag / only nDPI / only flowlens'];
  for (const [risk, f] of Object.entries(r.perRisk)) lines.push(`  ${risk}: ${f.both} / ${f.ndpiOnly} / ${f.oursOnly}`);
  lines.push(`differences: ${r.differences.length}`, ...r.differences.map((d) => `  ${d}`));
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const names = process.argv.slice(2);
  const started = Date.now();
  const r = await evaluateRisks(names.length > 0 ? names : undefined);
  console.log(reportRisks(r));
  console.log(`${((Date.now() - started) / 1000).toFixed(1)} s`);
}
