/**
 * Community ID v1 (src/enrich/community-id.ts) against the specification's published test vectors:
 * baseline/baseline_deflt.json of github.com/corelight/community-id-spec (seed 0, base64), one
 * entry per packet of its pcaps: TCP, UDP, SCTP, ICMP and ICMPv6 both ways (the type/code pairing)
 * and an IP protocol without ports (RSVP, 46). The packets' flows through the import are checked
 * against a second implementation (Wireshark's) in test/community-id-tshark.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { communityId, icmpPorts } from '../src/enrich/community-id.js';

/** The specification's baseline_deflt.json, as published. */
const SPEC_VECTORS: { proto: number; saddr: string; daddr: string; sport: number | null; dport: number | null; communityid: string }[] = [
  { proto: 58, saddr: 'fe80::200:86ff:fe05:80da', daddr: 'fe80::260:97ff:fe07:69ea', sport: 135, dport: 136, communityid: '1:dGHyGvjMfljg6Bppwm3bg0LO8TY=' },
  { proto: 58, saddr: 'fe80::260:97ff:fe07:69ea', daddr: 'fe80::200:86ff:fe05:80da', sport: 136, dport: 135, communityid: '1:dGHyGvjMfljg6Bppwm3bg0LO8TY=' },
  { proto: 58, saddr: 'fe80::260:97ff:fe07:69ea', daddr: 'fe80::200:86ff:fe05:80da', sport: 135, dport: 136, communityid: '1:zavyT/cezQr1fmImYCwYnMXbgck=' },
  { proto: 58, saddr: 'fe80::200:86ff:fe05:80da', daddr: 'fe80::260:97ff:fe07:69ea', sport: 136, dport: 135, communityid: '1:zavyT/cezQr1fmImYCwYnMXbgck=' },
  { proto: 58, saddr: '3ffe:501:1800:2345::2', daddr: '3ffe:507:0:1:200:86ff:fe05:80da', sport: 3, dport: 0, communityid: '1:2ObVBgIn28oZvibYZhZMBgh7WdQ=' },
  {
    proto: 58,
    saddr: '3ffe:501:410:0:2c0:dfff:fe47:33e',
    daddr: '3ffe:507:0:1:200:86ff:fe05:80da',
    sport: 1,
    dport: 4,
    communityid: '1:hLZd0XGWojozrvxqE0dWB1iM6R0=',
  },
  { proto: 58, saddr: '3ffe:507:0:1:200:86ff:fe05:80da', daddr: '3ffe:501:0:1001::2', sport: 128, dport: 129, communityid: '1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=' },
  { proto: 58, saddr: '3ffe:501:0:1001::2', daddr: '3ffe:507:0:1:200:86ff:fe05:80da', sport: 129, dport: 128, communityid: '1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=' },
  { proto: 58, saddr: 'fe80::200:86ff:fe05:80da', daddr: 'ff02::2', sport: 133, dport: 134, communityid: '1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=' },
  { proto: 58, saddr: 'fe80::260:97ff:fe07:69ea', daddr: 'ff02::1', sport: 134, dport: 133, communityid: '1:pkvHqCL88/tg1k4cPigmZXUtL00=' },
  { proto: 1, saddr: '192.168.0.89', daddr: '192.168.0.1', sport: 8, dport: 0, communityid: '1:X0snYXpgwiv9TZtqg64sgzUn6Dk=' },
  { proto: 1, saddr: '192.168.0.1', daddr: '192.168.0.89', sport: 0, dport: 8, communityid: '1:X0snYXpgwiv9TZtqg64sgzUn6Dk=' },
  { proto: 1, saddr: '10.0.0.1', daddr: '10.0.0.2', sport: 11, dport: 0, communityid: '1:YHxtAirCG//0OzkcVAukqKQN9xM=' },
  {
    proto: 6,
    saddr: '2001:470:e5bf:dead:4957:2174:e82c:4887',
    daddr: '2607:f8b0:400c:c03::1a',
    sport: 63943,
    dport: 25,
    communityid: '1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=',
  },
  {
    proto: 6,
    saddr: '2607:f8b0:400c:c03::1a',
    daddr: '2001:470:e5bf:dead:4957:2174:e82c:4887',
    sport: 25,
    dport: 63943,
    communityid: '1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=',
  },
  { proto: 132, saddr: '192.168.170.8', daddr: '192.168.170.56', sport: 7, dport: 7, communityid: '1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=' },
  { proto: 132, saddr: '192.168.170.56', daddr: '192.168.170.8', sport: 7, dport: 7, communityid: '1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=' },
  { proto: 6, saddr: '128.232.110.120', daddr: '66.35.250.204', sport: 34855, dport: 80, communityid: '1:LQU9qZlK+B5F3KDmev6m5PMibrg=' },
  { proto: 6, saddr: '66.35.250.204', daddr: '128.232.110.120', sport: 80, dport: 34855, communityid: '1:LQU9qZlK+B5F3KDmev6m5PMibrg=' },
  { proto: 17, saddr: '192.168.1.52', daddr: '8.8.8.8', sport: 54585, dport: 53, communityid: '1:d/FP5EW3wiY1vCndhwleRRKHowQ=' },
  { proto: 17, saddr: '8.8.8.8', daddr: '192.168.1.52', sport: 53, dport: 54585, communityid: '1:d/FP5EW3wiY1vCndhwleRRKHowQ=' },
  { proto: 46, saddr: '10.1.12.1', daddr: '10.1.12.2', sport: null, dport: null, communityid: '1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=' },
  { proto: 46, saddr: '10.1.12.2', daddr: '10.1.12.1', sport: null, dport: null, communityid: '1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=' },
];

describe('Community ID v1', () => {
  it("gives the specification's baseline value for every published vector", () => {
    // The baseline lists ICMP by the message's type and code (its "sport"/"dport").
    const wrong = SPEC_VECTORS.filter((v) => communityId({ ...v, sport: v.sport ?? 0, dport: v.dport ?? 0 }) !== v.communityid);
    assert.deepEqual(
      wrong.map(
        (v) =>
          `${v.proto} ${v.saddr}:${v.sport} -> ${v.daddr}:${v.dport}: ${communityId({ ...v, sport: v.sport ?? 0, dport: v.dport ?? 0 })} != ${v.communityid}`,
      ),
      [],
    );
  });

  it('is the same both ways for two-way messages and differs for one-way ICMP sent back', () => {
    const echo = communityId({ saddr: '10.0.0.1', daddr: '10.0.0.2', proto: 1, sport: 8, dport: 0 });
    assert.equal(communityId({ saddr: '10.0.0.2', daddr: '10.0.0.1', proto: 1, sport: 0, dport: 0 }), echo);
    const unreachable = communityId({ saddr: '10.0.0.1', daddr: '10.0.0.2', proto: 1, sport: 3, dport: 1 });
    assert.notEqual(communityId({ saddr: '10.0.0.2', daddr: '10.0.0.1', proto: 1, sport: 3, dport: 1 }), unreachable);
    assert.deepEqual(icmpPorts(true, 135, 0), { sport: 135, dport: 136, oneWay: false });
    assert.deepEqual(icmpPorts(false, 3, 3), { sport: 3, dport: 3, oneWay: true });
  });

  it('ignores ports of protocols that have none and refuses what is not an address', () => {
    assert.equal(
      communityId({ saddr: '10.1.12.1', daddr: '10.1.12.2', proto: 46, sport: 5, dport: 6 }),
      communityId({ saddr: '10.1.12.1', daddr: '10.1.12.2', proto: 46 }),
    );
    assert.throws(() => communityId({ saddr: '10.1.12.300', daddr: '10.1.12.2', proto: 6 }), /not an IP address: "10.1.12.300"/);
    assert.throws(() => communityId({ saddr: '10.1.12.1', daddr: '::1', proto: 6 }), /different IP versions/);
  });

  it('reads IPv4-mapped IPv6 text as the same address', () => {
    assert.equal(
      communityId({ saddr: '::ffff:10.0.0.1', daddr: '::1', proto: 6, sport: 1, dport: 2 }),
      communityId({ saddr: '::ffff:a00:1', daddr: '::1', proto: 6, sport: 1, dport: 2 }),
    );
  });
});
