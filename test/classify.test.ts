// The learned classifier (src/classify): what it collects of a flow's first packets, the shipped
// model file that `npm run train:ml` writes, its predictions on a held-out capture (the flow path's
// FlowClassifier.predict, fed by a real import, says what the evaluation, `npm run eval:ml`, says of
// every labelled flow), and the flow records: predictions where DPI named nothing, and only there.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { importFiles } from '../src/capture/import.js';
import {
  CLASSIFY_PACKETS,
  CLASSIFY_TLS_RECORDS,
  ENTROPY_BYTES,
  entropyOf,
  FLOW_FEATURES,
  FlowClassifier,
  featureNames,
  ML_CATEGORIES,
  type Prediction,
  shippedModel,
} from '../src/classify/classifier.js';
import { DuckDbStore } from '../src/store/duckdb.js';
import { CORPUS, canonicalIp, corpusFiles, flowKey } from './dpi/eval.js';
import { candidateModel, isTestCapture, predictSample } from './dpi/ml.js';
import { corpusSamples } from './dpi/ml-data.js';

const MODEL = candidateModel();
const NAMES = featureNames(MODEL.category.classes.length, MODEL.app.classes.length);
const flowAt = (name: string) => NAMES.indexOf(name) - (NAMES.length - FLOW_FEATURES);

describe('FlowClassifier features', () => {
  it('keeps the first payload packets signed by direction, their gaps, and the TLS record headers that start TCP segments', () => {
    const c = new FlowClassifier(MODEL);
    c.ensure(4);
    c.reset(2, 1_000_000);
    // A ClientHello (one record), then the server's ServerHello + ChangeCipherSpec + a handshake
    // record in one segment, then application data.
    const record = (type: number, length: number) => Buffer.concat([Buffer.from([type, 3, 3, length >> 8, length & 0xff]), Buffer.alloc(length)]);
    const hello = record(22, 512);
    const server = Buffer.concat([record(22, 90), record(20, 1), record(22, 40)]);
    const data = record(23, 300);
    c.packet(2, 1_000_500, true, 6, hello, 0, hello.length);
    c.packet(2, 1_020_500, false, 6, server, 0, server.length);
    c.packet(2, 1_021_500, true, 6, data, 0, data.length);
    // A segment that starts inside a record: not taken for a header.
    const middle = Buffer.alloc(200, 0x41);
    c.packet(2, 1_021_500, false, 6, middle, 0, middle.length);
    const x = new Float32Array(FLOW_FEATURES);
    c.flowFeatures(2, x, 0);
    assert.deepEqual([x[flowAt('size0')], x[flowAt('size1')], x[flowAt('size2')], x[flowAt('size3')], x[flowAt('size4')]], [517, -(95 + 6 + 45), 305, -200, 0]);
    assert.equal(x[flowAt('gap0')], Math.fround(Math.log2(1 + 500)));
    assert.equal(x[flowAt('gap1')], Math.fround(Math.log2(1 + 20_000)));
    assert.equal(x[flowAt('gap3')], 0, 'back to back');
    assert.equal(x[flowAt('payloadPackets')], 4);
    assert.equal(x[flowAt('clientBytes')], 517 + 305);
    assert.equal(x[flowAt('turns')], 3);
    assert.equal(x[flowAt('tlsRecords')], 5);
    const tls = [0, 1, 2, 3, 4].map((r) => [x[flowAt(`tlsType${r}`)], x[flowAt(`tlsLength${r}`)]]);
    assert.deepEqual(tls, [
      [22, 512],
      [22, -90],
      [20, -1],
      [22, -40],
      [23, 300],
    ]);
    // Payload statistics: each direction's first size, mean and least; the entropy of each
    // direction's first ENTROPY_BYTES (the ClientHello here: a 5-byte header, then zeros).
    assert.deepEqual([x[flowAt('clientFirst')], x[flowAt('serverFirst')], x[flowAt('clientMean')], x[flowAt('serverMin')]], [517, 146, (517 + 305) / 2, 146]);
    assert.equal(x[flowAt('clientEntropy')], Math.fround(entropyOf(hello, 0, ENTROPY_BYTES)));
    assert.ok(x[flowAt('clientEntropy')] > 0 && x[flowAt('clientEntropy')] < 1, `${x[flowAt('clientEntropy')]}`);
    assert.equal(x[flowAt('distinctSizes')], 4);
    // Bounded: packets past CLASSIFY_PACKETS are the caller's to skip (count stops there), TLS records past CLASSIFY_TLS_RECORDS are dropped.
    for (let i = 0; i < CLASSIFY_PACKETS; i++) if (c.count[2] < CLASSIFY_PACKETS) c.packet(2, 1_030_000 + i, true, 6, server, 0, server.length);
    c.flowFeatures(2, x, 0);
    assert.equal(x[flowAt('payloadPackets')], CLASSIFY_PACKETS);
    assert.equal(x[flowAt('tlsRecords')], CLASSIFY_TLS_RECORDS);
    // A new flow in the slot starts afresh: zeros, but for the entropies of payloads not seen (-1).
    c.reset(2, 5_000_000);
    c.flowFeatures(2, x, 0);
    assert.deepEqual([x[flowAt('clientEntropy')], x[flowAt('serverEntropy')]], [-1, -1]);
    assert.equal(
      x.reduce((a, v) => a + Math.abs(v), 0),
      2,
    );
    assert.equal(c.predict(2, 6, 443), c.predict(3, 6, 443), 'no payload: no prediction');
    assert.equal(c.predict(2, 6, 443).category, '');
  });
});

describe('the shipped model file', () => {
  it('entropyOf: bits per byte of the bytes given', () => {
    assert.equal(entropyOf(Buffer.alloc(64, 7), 0, 64), 0);
    assert.equal(entropyOf(Buffer.from(Array.from({ length: 64 }, (_, i) => i)), 0, 64), 6);
    assert.equal(entropyOf(Buffer.from([1, 2, 1, 2]), 0, 4), 1);
    assert.equal(entropyOf(Buffer.from([9, 1, 2, 9]), 1, 2), 1, 'only the range given');
    assert.equal(entropyOf(Buffer.alloc(0), 0, 0), 0);
  });

  it('loads: the documented categories, applications with none first, trees over features that exist', () => {
    const m = MODEL;
    assert.deepEqual(m.category.classes, [...ML_CATEGORIES]);
    assert.equal(m.app.classes[0], '', "the first application class is 'none of the largest'");
    assert.ok(m.app.classes.length >= 5, `${m.app.classes.length} applications`);
    assert.match(String(m.json.about.trainedBy), /npm run train:ml/);
    for (const target of [m.json.category, m.json.app]) {
      assert.ok(target.trees.length >= target.classes.length);
      assert.equal(target.trees.length % target.classes.length, 0);
      for (const t of target.trees) for (const f of t.f) assert.ok(f < m.featureCount, `feature ${f} of ${m.featureCount}`);
    }
    assert.equal(m.json.portKeys.length, m.json.portCategory.length);
  });
});

/** A held-out capture (never trained on) with 59 labelled flows, 20 of them TLS. */
const HELD_OUT = 'netflix.pcap';
const corpusFile = corpusFiles().find((f) => f.name === HELD_OUT);
const skip = corpusFile === undefined ? `the nDPI corpus is not at ${CORPUS}` : false;

describe('predictions on a held-out capture', { skip }, () => {
  it("FlowClassifier.predict on the flow path equals the evaluation's prediction for every labelled flow", async () => {
    assert.equal(isTestCapture(HELD_OUT), true, 'one of the test captures');
    const expected = new Map((await corpusSamples([corpusFile!])).map((s) => [s.key, predictSample(MODEL, s)]));
    assert.ok(expected.size >= 50, `${expected.size} labelled flows`);
    // The same import with the model in the aggregator's classifier: each flow predicted from the
    // state its packets left there, as it ends.
    const got = new Map<string, unknown>();
    await importFiles([corpusFile!.pcap], {
      store: null,
      detect: false,
      classifierModel: MODEL,
      onFlowFeatures: (flow, _features, classifier, slot) => {
        got.set(
          flowKey(flow.transport, canonicalIp(flow.clientIp), String(flow.clientPort), canonicalIp(flow.serverIp), String(flow.serverPort)),
          classifier.predict(slot, flow.ipProto, flow.serverPort),
        );
      },
    });
    let compared = 0;
    const categories = new Set<string>();
    for (const [key, want] of expected) {
      assert.deepEqual(got.get(key), want, key);
      categories.add(want.category);
      compared++;
    }
    assert.equal(compared, expected.size);
    assert.ok(categories.size >= 2, `predictions of ${[...categories].join(', ')}`);
  });
});

/** Captures with flows DPI names and flows it does not, some on server ports training never saw. */
const MIXED = ['telegram.pcap', 'nintendo.pcap'].map((name) => corpusFiles().find((f) => f.name === name));
const skipMixed = MIXED.some((f) => f === undefined) ? `the nDPI corpus is not at ${CORPUS}` : false;

describe('predictions in the flow records', { skip: skipMixed }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowlens-classify-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Imports the captures into a fresh DuckDB file; each flow's summed row by its 5-tuple key, with the classifier's own prediction as the flow ended. */
  async function importRows(classify: boolean, name: string, hook = true) {
    const path = join(dir, `${name}.duckdb`);
    const store = new DuckDbStore({ path });
    await store.init();
    const predicted = new Map<string, Prediction>();
    for (const file of MIXED) {
      await importFiles([file!.pcap], {
        store,
        classify,
        source: file!.name,
        // The hook makes the classifier collect every flow's features; without it (as in
        // production) it skips flows DPI has named, which must not change any guess.
        onFlowFeatures: hook
          ? (flow, _x, classifier, slot) => predicted.set(`${file!.name}/${flow.flowId}`, classifier.predict(slot, flow.ipProto, flow.serverPort))
          : undefined,
      });
    }
    await store.close();
    const instance = await DuckDBInstance.create(path, { access_mode: 'READ_ONLY' });
    const conn = await instance.connect();
    const rows = (
      await conn.runAndReadAll(
        `SELECT concat(source, '/', flow_id) AS flow_id, any_value(ip_proto) AS ip_proto, any_value(server_port) AS server_port, max(app) AS app, string_agg(DISTINCT predicted_category, ',') AS category,
                string_agg(DISTINCT predicted_app, ',') AS papp, max(predicted_confidence) AS confidence,
                md5(string_agg(concat_ws('|', ts, client_ip, client_port, server_ip, server_port, client_bytes, server_bytes, app, server_name, conn_state, history), ';' ORDER BY ts)) AS rest
         FROM flows GROUP BY source, flow_id ORDER BY source, flow_id`,
      )
    ).getRowObjects();
    conn.closeSync();
    instance.closeSync();
    return { rows, predicted };
  }

  it("where DPI named no application, the classifier's guess with its confidence; never beside a DPI answer; --no-classify leaves the rest as it was", async () => {
    const on = await importRows(true, 'on');
    const off = await importRows(false, 'off');
    const plain = await importRows(true, 'plain', false);
    const model = shippedModel();
    let guessed = 0;
    let fromTrees = 0;
    const categories = new Set<string>();
    for (const row of on.rows) {
      const id = String(row.flow_id);
      const want = on.predicted.get(id) ?? { category: '', app: '', confidence: 0 };
      if (row.app !== '' && row.app !== null) {
        assert.equal(row.category, '', `${id}: DPI named ${row.app}, and a guess beside it`);
        assert.equal(row.confidence, 0);
        continue;
      }
      // The final segment's guess is the one the classifier makes as the flow ends.
      assert.equal(row.category, want.category, `${id} ${JSON.stringify(row)}`);
      assert.equal(row.papp, want.app, id);
      assert.equal(row.confidence, want.confidence, id);
      if (want.category !== '') {
        guessed++;
        categories.add(want.category);
        assert.ok(ML_CATEGORIES.includes(want.category as (typeof ML_CATEGORIES)[number]), want.category);
        assert.ok(want.confidence >= 1 && want.confidence <= 100, `${want.confidence}`);
        // On a server port training never saw, the trees answer (elsewhere the port table does).
        if (model.portIndex(Number(row.ip_proto), Number(row.server_port)) < 0) fromTrees++;
      }
    }
    assert.ok(guessed >= 20, `${guessed} flows guessed`);
    assert.ok(fromTrees >= 5, `${fromTrees} guesses by the trees`);
    assert.ok(categories.size >= 3, `guesses of ${[...categories].join(', ')}`);
    assert.equal(on.rows.filter((r) => r.app !== '' && r.app !== null).length >= 30, true, 'flows DPI named are there too');
    // Without the training hook: the same guesses.
    assert.deepEqual(
      plain.rows.map((r) => [r.flow_id, r.category, r.papp, r.confidence]),
      on.rows.map((r) => [r.flow_id, r.category, r.papp, r.confidence]),
    );
    // Off: no guesses, and every other column as it was.
    assert.equal(off.rows.length, on.rows.length);
    for (const [i, row] of off.rows.entries()) {
      assert.equal(row.category, '', String(row.flow_id));
      assert.equal(row.confidence, 0);
      assert.equal(row.rest, on.rows[i].rest, String(row.flow_id));
    }
  });
});
