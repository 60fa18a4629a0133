// What the learned classifier (src/classify) costs on the flow path: in isolation, the per-packet
// collection of a flow's first payload packets (sizes, gaps, TLS record headers) and the per-flow
// prediction with the shipped model, on a server port the port table answers for and on one
// training never saw (feature vector and the trees of both targets); then in place, CPU time of an
// import (DPI on, no store, no detection) of a capture as shipped (predictions where DPI names
// nothing) and with --no-classify, each the median of `runs`. `npm run bench -- --only classify`, or `node --import tsx test/bench/classify.ts [CAPTURE] [RUNS]`.
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { importFiles } from '../../src/capture/import.js';
import { CLASSIFY_PACKETS, FlowClassifier } from '../../src/classify/classifier.js';
import { candidateModel } from '../dpi/ml.js';
import { median } from './measure.js';

export interface ClassifyBench {
  /** CPU ns per payload packet recorded (TLS-looking TCP payloads). */
  collectNs: number;
  /** CPU µs per prediction (a flow with CLASSIFY_PACKETS payload packets) on a port the port table answers for. */
  predictKnownUs: number;
  /** The same on server ports training never saw: the trees answer. */
  predictUs: number;
  trees: number;
  import?: { capture: string; flows: number; packets: number; onCpuS: number; offCpuS: number; perFlowUs: number };
  load: number;
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Micro-benchmark over `flows` synthetic flows of TLS-like payloads (median of `runs`). */
function micro(runs: number): { collectNs: number; predictKnownUs: number; predictUs: number } {
  const flows = 20_000;
  const m = candidateModel();
  const c = new FlowClassifier(m);
  c.ensure(flows);
  // A TLS application-data record header at the start of each payload, varied sizes.
  const payloads = Array.from({ length: 16 }, (_, i) => {
    const len = 100 + i * 83;
    const b = Buffer.alloc(len + 5);
    b[0] = 23;
    b[1] = 3;
    b[2] = 3;
    b.writeUInt16BE(len, 3);
    return b;
  });
  const collect: number[] = [];
  const predict: number[] = [];
  const predictKnown: number[] = [];
  // Unseen server ports (the trees answer) and a port the table knows.
  const unseen: number[] = [];
  for (let port = 40000; unseen.length < 1024; port++) if (m.portIndex(6, port) < 0) unseen.push(port);
  if (m.portIndex(6, 443) < 0) throw new Error('classify bench: the model does not know tcp/443');
  let sink = 0;
  for (let r = 0; r < runs; r++) {
    // CPU time, not wall time: the machine is shared.
    let t = cpuSeconds();
    for (let f = 0; f < flows; f++) {
      c.reset(f, 1e15);
      for (let p = 0; p < CLASSIFY_PACKETS; p++) {
        const b = payloads[(f + p) & 15];
        c.packet(f, 1e15 + p * 1000 + (f & 255), (p & 1) === 0, 6, b, 0, b.length);
      }
    }
    collect.push(((cpuSeconds() - t) * 1e9) / (flows * CLASSIFY_PACKETS));
    t = cpuSeconds();
    for (let f = 0; f < flows; f++) sink += c.predict(f, 6, unseen[f & 1023]).confidence;
    predict.push(((cpuSeconds() - t) * 1e6) / flows);
    for (let f = 0; f < flows; f++) c.reset(f, 1e15);
    for (let f = 0; f < flows; f++) c.packet(f, 1e15, true, 6, payloads[f & 15], 0, payloads[f & 15].length);
    t = cpuSeconds();
    for (let f = 0; f < flows; f++) sink += c.predict(f, 6, 443).confidence;
    predictKnown.push(((cpuSeconds() - t) * 1e6) / flows);
  }
  if (sink < 0) console.log(sink);
  return { collectNs: median(collect), predictKnownUs: median(predictKnown), predictUs: median(predict) };
}

export async function runClassifyBench(opts: { capture?: string; runs: number; log?: (s: string) => void }): Promise<ClassifyBench> {
  const m = candidateModel();
  const out: ClassifyBench = { ...micro(opts.runs), trees: m.json.category.trees.length + m.json.app.trees.length, load: loadavg()[0] };
  if (opts.capture) {
    const on: number[] = [];
    const off: number[] = [];
    let flows = 0;
    let packets = 0;
    for (let r = 0; r < opts.runs; r++) {
      for (const classify of [true, false]) {
        opts.log?.(`classify bench: import ${classify ? 'with' : 'without'} the classifier, run ${r + 1}/${opts.runs}`);
        const t = cpuSeconds();
        const s = await importFiles([opts.capture], { store: null, detect: false, classify });
        (classify ? on : off).push(cpuSeconds() - t);
        flows = s.flows;
        packets = s.packets;
      }
    }
    const onCpuS = median(on);
    const offCpuS = median(off);
    out.import = { capture: opts.capture, flows, packets, onCpuS, offCpuS, perFlowUs: ((onCpuS - offCpuS) / flows) * 1e6 };
  }
  return out;
}

export function formatClassifyBench(r: ClassifyBench): string {
  const lines = [
    `classifier (src/classify, the shipped model of ${r.trees} trees; load average ${r.load.toFixed(1)}):`,
    `  collect: ${r.collectNs.toFixed(0)} ns CPU per payload packet (first ${CLASSIFY_PACKETS} of a flow only; median of runs over 20,000 flows)`,
    `  predict: ${r.predictUs.toFixed(1)} µs CPU per flow on a server port training never saw (features, category and application trees); ${r.predictKnownUs.toFixed(2)} µs where the port table answers`,
  ];
  if (r.import) {
    const i = r.import;
    lines.push(
      `  import of ${i.capture} (${i.packets} packets, ${i.flows} flows; no store, no detection), CPU time medians: ${i.onCpuS.toFixed(2)} s as shipped (predictions where DPI names nothing), ${i.offCpuS.toFixed(2)} s with --no-classify (${((100 * (i.onCpuS - i.offCpuS)) / i.offCpuS).toFixed(1)}%, ${i.perFlowUs.toFixed(1)} µs a flow)`,
    );
  }
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = await runClassifyBench({ capture: process.argv[2], runs: Number(process.argv[3] ?? 3), log: (s) => console.error(s) });
  console.log(formatClassifyBench(r));
}
