/**
 * Community ID (src/enrich/community-id.ts) against a second implementation, Wireshark's
 * ("Community ID Flow Hashing", enabled with --enable-protocol communityid): captures of TCP, UDP,
 * IPv4 fragments, ICMP, ICMPv6, SCTP and protocols without ports (ESP, OSPF) are imported, and the
 * set of Community IDs the flows carry must equal the set tshark computes for the same packets.
 * Then the field through `flowlens export flows` and GraphQL, where it is also a flow filter.
 * Skips with a message when ../shared or tshark is absent.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { importFiles as importIntoStore } from '../src/capture/import.js';
import { openStore } from '../src/store/index.js';
import { gqlData, startTestServer } from './api-helpers.js';
import { exportFlows, importFiles, REPO_ROOT, withTempDir } from './helpers/cli.js';

const PCAPS = join(REPO_ROOT, '..', 'shared', 'corpus', 'ndpi', 'pcap');
/** TCP (443-curl), UDP v4 and v6 (dns, hsrp2_ipv6), IP fragments (dns_fragmented), ICMP, SCTP, ESP and OSPF (no ports). */
const CAPTURES = [
  '443-curl.pcap',
  'dns.pcap',
  'hsrp2_ipv6.pcapng',
  'dns_fragmented.pcap',
  'icmp-tunnel.pcap',
  'sctp.cap',
  'ipsec_isakmp_esp.pcap',
  'ospfv2_add_new_prefix.pcap',
];
const tshark = spawnSync('tshark', ['--version']).status === 0;
const skip = !existsSync(PCAPS) ? `${PCAPS} is absent` : !tshark ? 'tshark is not installed' : undefined;
if (skip) console.log(`# community-id-tshark: skipped: ${skip}`);

/**
 * Wireshark's Community IDs of the packets of `file` (one per packet that has one). IPv4 fragments
 * before the last are left out: Wireshark dissects the transport header at the last one, after
 * reassembly, and hashes the others without ports, while a flow's ID has its ports (as the spec asks).
 */
function tsharkIds(file: string): Set<string> {
  const args = ['--enable-protocol', 'communityid', '-r', file, '-Y', '!(ip.flags.mf == 1)', '-T', 'fields', '-e', 'communityid'];
  const r = spawnSync('tshark', args, {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  assert.equal(r.status, 0, r.stderr);
  return new Set(r.stdout.split('\n').filter((l) => l.startsWith('1:')));
}

describe('Community ID against Wireshark', { skip }, () => {
  it("every flow's Community ID is Wireshark's for its packets, and every one of Wireshark's is a flow's", async () => {
    await withTempDir(async (dir) => {
      const store = await openStore({ db: join(dir, 'cid.duckdb'), duckdbThreads: 1 });
      const ours = new Map<string, Set<string>>();
      try {
        for (const name of CAPTURES) await importIntoStore([join(PCAPS, name)], { store, detect: false });
        await store.flush();
        for await (const flow of store.exportFlows()) {
          const set = ours.get(flow.iface) ?? new Set<string>();
          set.add(flow.communityId);
          ours.set(flow.iface, set);
        }
      } finally {
        await store.close();
      }
      let compared = 0;
      for (const name of CAPTURES) {
        const want = tsharkIds(join(PCAPS, name));
        const got = ours.get(name) ?? new Set<string>();
        assert.ok(want.size > 0, `${name}: tshark computed no Community ID`);
        assert.deepEqual([...got].sort(), [...want].sort(), `${name}: flowlens's Community IDs (actual) against Wireshark's (expected)`);
        compared += want.size;
      }
      console.log(`# community-id-tshark: ${compared} flows' Community IDs equal Wireshark's over ${CAPTURES.length} captures`);
    });
  });

  it('flowlens export flows carries communityId, and GraphQL returns it and filters by it', async () => {
    const file = join(PCAPS, '443-curl.pcap');
    const [want] = [...tsharkIds(file)];
    await withTempDir(async (dir) => {
      const db = join(dir, 'cli.duckdb');
      await importFiles(db, [file]);
      const flows = (await exportFlows(db)) as unknown as { communityId: string }[];
      assert.ok(
        flows.some((f) => f.communityId === want),
        `${want} among ${flows.map((f) => f.communityId).join(' ')}`,
      );
    });

    const t = await startTestServer();
    try {
      await importIntoStore([join(PCAPS, 'dns.pcap'), file], { store: t.store, detect: false });
      await t.store.flush();
      type Page = { flows: { edges: { node: { communityId: string; serverPort: number } }[] } };
      const query = `query($filter: FlowFilter) { flows(from: "2000-01-01T00:00:00Z", to: "2100-01-01T00:00:00Z", first: 1000, filter: $filter) { edges { node { communityId serverPort } } } }`;
      const all = await gqlData<Page>(t.url, query, {});
      assert.ok(all.flows.edges.length > 1, 'both captures have flows');
      const only = await gqlData<Page>(t.url, query, { filter: { communityId: want } });
      assert.deepEqual(
        only.flows.edges.map((e) => e.node),
        [{ communityId: want, serverPort: 443 }],
      );
      const none = await gqlData<Page>(t.url, query, { filter: { communityId: '1:AAAAAAAAAAAAAAAAAAAAAAAAAAA=' } });
      assert.equal(none.flows.edges.length, 0);
    } finally {
      await t.stop();
    }
  });
});
