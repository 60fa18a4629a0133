// The SSH flow's server name as nDPI gives it: the first banner seen, whichever side sent it (nDPI
// keeps the first as its "client signature" and reports it as Hostname/SNI). A client often speaks
// first (ssh to a local server, captured by test/dpi/unseen.ts; the corpus's ssh.pcap on port 8000),
// a server otherwise (ssh.pcap on port 22, ssh_unidirectional.pcap).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DpiEngine } from '../src/dpi/engine.js';

function serverName(lines: { fromClient: boolean; text: string }[]): string {
  const engine = new DpiEngine();
  engine.reset(0, 6);
  for (const l of lines) {
    const b = Buffer.from(l.text);
    if (engine.decided[0] !== 1) engine.packet(0, 6, b, 0, b.length, l.fromClient, 50123, 22, -1);
  }
  engine.label(0, 6, 50123, 22);
  assert.equal(engine.appName(0), 'SSH');
  return engine.serverName(0);
}

describe('SSH server name', () => {
  it('is the client banner when the client speaks first', () => {
    const name = serverName([
      { fromClient: true, text: 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6\r\n' },
      { fromClient: false, text: 'SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n' },
    ]);
    assert.equal(name, 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6');
  });

  it('is the server banner when the server speaks first, or alone', () => {
    assert.equal(
      serverName([
        { fromClient: false, text: 'SSH-2.0-OpenSSH_5.3\r\n' },
        { fromClient: true, text: 'SSH-2.0-OpenSSH_5.6\r\n' },
      ]),
      'SSH-2.0-OpenSSH_5.3',
    );
    assert.equal(serverName([{ fromClient: false, text: 'SSH-2.0-OpenSSH_7.4p1 Debian-10+deb9u7\r\n' }]), 'SSH-2.0-OpenSSH_7.4p1 Debian-10+deb9u7');
  });
});
