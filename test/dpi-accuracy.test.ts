// Application protocol identification measured against nDPI over its own test captures
// (../shared/corpus/ndpi; see test/dpi/eval.ts). The thresholds are the figures reached, rounded
// down a little, so that a change that loses accuracy fails here.
import assert from 'node:assert/strict';
import { sharedCorpusMissing } from './helpers/shared.js';
import { describe, it } from 'node:test';
import { CORPUS, evaluate, report } from './dpi/eval.js';

const THRESHOLDS = {
  /** Master protocol agreement over flows nDPI labels with one of the protocols. */
  agreement: 0.995,
  /** Identical server names where nDPI reports one (all captures / without the mutated fuzz-* ones). */
  names: 0.985,
  namesClean: 0.99,
  /** Per protocol, for the ones with enough flows to mean something. */
  perProtocol: { TLS: 0.99, DNS: 0.99, HTTP: 0.99, QUIC: 0.99, STUN: 0.99, SSDP: 0.99, MDNS: 0.99 } as Record<string, number>,
  /** Beyond the list: the same, for protocols with at least 7 labelled flows. */
  beyond: {
    Service_Location_Protocol: 0.99,
    Kerberos: 0.97,
    IPSec: 0.97,
    Zabbix: 0.95,
    'MsSQL-TDS': 0.93,
    Jabber: 0.92,
    LDAP: 0.9,
    OpenVPN: 0.9,
    Kafka: 0.88,
    WireGuard: 0.85,
    LLMNR: 0.98,
    NetBIOS: 0.88,
    RTSP: 0.9,
    // By IP protocol number.
    ICMP: 0.95,
    ICMPV6: 0.95,
    IGMP: 0.9,
  } as Record<string, number>,
  /** Flows DPI gives one of those protocols where nDPI names another, Gnutella aside (see BEYOND_PROTOCOLS in eval.ts). */
  beyondWrongDpi: 3,
};

describe('DPI accuracy against nDPI', { skip: sharedCorpusMissing('dpi-accuracy', CORPUS) }, () => {
  it('agrees with nDPI on the master protocol and the server name', { timeout: 180_000 }, async () => {
    const r = await evaluate();
    console.log(report(r, false));
    assert.ok(r.flows > 1000, `too few labelled flows (${r.flows}): corpus or listing parse broken`);
    assert.ok(r.agree / r.flows >= THRESHOLDS.agreement, `agreement ${r.agree}/${r.flows}`);
    assert.ok(r.namesIdentical / r.names >= THRESHOLDS.names, `server names ${r.namesIdentical}/${r.names}`);
    assert.ok(r.namesCleanIdentical / r.namesClean >= THRESHOLDS.namesClean, `server names ${r.namesCleanIdentical}/${r.namesClean}`);
    for (const [name, min] of Object.entries(THRESHOLDS.perProtocol)) {
      const p = r.perProtocol[name];
      assert.ok(p !== undefined && p.agree / p.flows >= min, `${name}: ${p?.agree}/${p?.flows}`);
    }
    for (const [name, min] of Object.entries(THRESHOLDS.beyond)) {
      const p = r.beyond[name];
      assert.ok(p !== undefined && p.agree / p.flows >= min, `${name}: ${p?.agree}/${p?.flows}`);
    }
    const wrongDpi = r.beyondWrong.filter(([k]) => k.endsWith('[dpi]') && !k.includes('Gnutella')).reduce((n, [, c]) => n + c, 0);
    assert.ok(wrongDpi <= THRESHOLDS.beyondWrongDpi, `flows DPI gave a protocol nDPI does not: ${wrongDpi}`);
  });
});
