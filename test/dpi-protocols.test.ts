// The protocols flowlens identifies beyond the first list (directory services, VPNs, databases and
// other services), each flow built byte by byte in test/dpi/cases-*.ts and fed through a DpiEngine
// with every registered dissector, as the aggregator does: the first payloads until the flow is
// decided. A positive case must be found by DPI under nDPI's name (so no other dissector may claim
// it first); a negative case, plausible bytes on the protocol's port, must not be found by DPI.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DpiEngine } from '../src/dpi/engine.js';
import type { DpiCase } from './dpi/cases.js';
import { DIRECTORY_CASES } from './dpi/cases-directory.js';
import { SERVICE_CASES } from './dpi/cases-services.js';
import { VPN_CASES } from './dpi/cases-vpn.js';

function identify(c: DpiCase): { app: string; confidence: string; serverName: string } {
  const engine = new DpiEngine();
  const f = 1;
  engine.reset(f, c.proto);
  for (const m of c.messages) {
    if (engine.decided[f] === 1) break;
    engine.packet(f, c.proto, m.payload, 0, m.payload.length, m.fromClient, c.clientPort, c.serverPort, -1);
  }
  engine.label(f, c.proto, c.clientPort, c.serverPort);
  return { app: engine.appName(f), confidence: engine.confidenceName(f), serverName: engine.serverName(f) };
}

describe('DPI: protocols beyond the first list, through the engine with every dissector', () => {
  for (const [group, cases] of [
    ['directory', DIRECTORY_CASES],
    ['vpn', VPN_CASES],
    ['services', SERVICE_CASES],
  ] as const) {
    it(`${group}: ${cases.filter((c) => c.app !== '').length} flows identified, ${cases.filter((c) => c.app === '').length} look-alikes not`, () => {
      assert.ok(cases.some((c) => c.app !== '') && cases.some((c) => c.app === ''), 'positive and negative cases');
      for (const c of cases) {
        const got = identify(c);
        const where = `${c.name} (${c.proto === 6 ? 'tcp' : 'udp'} ${c.clientPort} -> ${c.serverPort}): got ${JSON.stringify(got)}`;
        if (c.app === '') {
          assert.ok(got.confidence !== 'dpi' && got.confidence !== 'guess', where);
        } else {
          assert.equal(got.app, c.app, where);
          assert.equal(got.confidence, 'dpi', where);
        }
        if (c.serverName !== undefined) assert.equal(got.serverName, c.serverName, where);
      }
    });
  }
});
