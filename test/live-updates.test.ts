// @runs-alone (test/run.ts): times what reaches a subscriber within a second
/**
 * Live flows tell the truth promptly (issue 21): a flow's last state reaches a flowUpdates
 * subscriber within a second of its last packet, not when the flow ends. Before the fix a curl
 * exchange showed as its SYN alone (one packet, 74 B, "attempted") until the flow's end, because an
 * update went out only with a later packet, at most once a second.
 *
 * Real traffic: `flowlens run` captures on a veth in a namespace, python's http.server answers in
 * the other, curl fetches a page; the subscription (SSE, read with curl -N inside the namespace,
 * where the API listens) is timestamped as it arrives. The flow's END (seconds later, after the
 * closed-TCP idle timeout) gives its final counts; an UPDATE with those counts must have come within 1 s of
 * curl's exit. Needs root; skips with a message otherwise.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ARGV, REPO_ROOT } from './helpers/cli.js';
import { collect, createNsPair, missingTool, netnsUnavailable, sleep, waitForOutput, type NsPair } from './helpers/netns.js';

const unavailable = netnsUnavailable() ?? (missingTool('curl', 'python3') ? `needs ${missingTool('curl', 'python3')}` : null);
if (unavailable) console.log(`# live-updates: skipped: ${unavailable}`);

interface FlowState {
  id: string;
  tcpState: string | null;
  clientPackets: number;
  serverPackets: number;
  clientBytes: number;
  serverBytes: number;
}
interface Arrival {
  at: number;
  type: string;
  flow: FlowState;
}

describe('live flows: the last state within a second', { skip: unavailable ?? false }, () => {
  let net: NsPair;
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-live-updates-'));
    net = createNsPair();
    net.spawnIn(net.nsB, ['python3', '-m', 'http.server', '8080', '--bind', net.ipsB[0]], { cwd: dir });
  });
  after(() => {
    net?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("a curl exchange's final bytes and state arrive within ~1 s of its last packet", async () => {
    const run = net.spawnIn(
      net.nsA,
      [process.execPath, ...CLI_ARGV, 'run', '-i', net.vethA, '--port', '0', '--db', join(dir, 'run.duckdb'), '--tcp-closed-timeout', '3'],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, FLOWLENS_LOG_FORMAT: 'json' },
      },
    );
    const out = collect(run);
    try {
      const log = await waitForOutput(run, /API at/);
      const url = /"url":"([^"]+)"/.exec(log.split('\n').find((l) => l.includes('API at')) ?? '')?.[1];
      assert.ok(url, log);
      // The subscription, read inside the namespace; each `data:` line timestamped on arrival.
      const query = 'subscription { flowUpdates(filter: { port: 8080 }) { type flow { id tcpState clientPackets serverPackets clientBytes serverBytes } } }';
      const sse = net.spawnIn(net.nsA, [
        'curl',
        '-sN',
        '-H',
        'content-type: application/json',
        '-H',
        'accept: text/event-stream',
        '--data',
        JSON.stringify({ query }),
        url,
      ]);
      const arrivals: Arrival[] = [];
      let buf = '';
      sse.stdout?.setEncoding('utf8').on('data', (d: string) => {
        const at = Date.now();
        buf += d;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (!line.startsWith('data: ')) continue;
          const u = JSON.parse(line.slice(6)).data?.flowUpdates;
          if (u) arrivals.push({ at, type: u.type, flow: u.flow });
        }
      });
      await sleep(1500); // the subscription is registered and the workers know of it

      const curl = net.spawnIn(net.nsA, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${net.ipsB[0]}:8080/`]);
      const curlOut = collect(curl);
      assert.equal((await curlOut.done).code, 0);
      const curlDone = Date.now();
      assert.equal(curlOut.stdout(), '200');

      // The flow ends 3 s after its close (--tcp-closed-timeout), seen by the live clock's next
      // tick (it lags the wall clock by a few seconds): its END has the final counts.
      const end = Date.now() + 60_000;
      while (!arrivals.some((a) => a.type === 'END') && Date.now() < end) await sleep(200);
      const last = arrivals.find((a) => a.type === 'END');
      assert.ok(last, `no END event; got ${JSON.stringify(arrivals)}`);
      // 3 s timeout + the clock's 2 s lag + a 1 s tick, with room for a loaded machine; not the
      // interval's end (--interval 60: up to a minute later).
      assert.ok(last.at - curlDone <= 12_000, `the flow's END came ${last.at - curlDone} ms after curl exited`);
      assert.equal(last.flow.tcpState, 'closed');
      assert.ok(last.flow.clientPackets >= 5 && last.flow.serverBytes > 74, JSON.stringify(last.flow));
      const same = (f: FlowState) =>
        f.id === last.flow.id &&
        f.clientPackets === last.flow.clientPackets &&
        f.serverPackets === last.flow.serverPackets &&
        f.clientBytes === last.flow.clientBytes &&
        f.serverBytes === last.flow.serverBytes &&
        f.tcpState === 'closed';
      const prompt = arrivals.find((a) => a.type !== 'END' && same(a.flow));
      assert.ok(prompt, `the final state came only with the flow's END: ${JSON.stringify(arrivals.map((a) => [a.at - curlDone, a.type, a.flow]))}`);
      const delay = prompt.at - curlDone;
      console.log(`# final state ${delay} ms after curl exited (END ${last.at - curlDone} ms after); ${arrivals.length} events`);
      assert.ok(delay <= 1000, `the final state came ${delay} ms after the last packet`);
      sse.kill('SIGTERM');
    } finally {
      run.kill('SIGINT');
      await out.done;
    }
  });
});
