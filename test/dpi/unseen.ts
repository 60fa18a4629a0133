// Identification on captures no test was tuned on: real programs (curl, wget, openssl s_client and
// s_server, dig, ssh, redis-cli and redis-server, mosquitto_pub and mosquitto, psql, python's
// http.server) talk over loopback to servers on 127.27.0.2 (a few small protocol servers of this
// script stand in where no daemon is installed: DNS, SMTP, POP3, IMAP, FTP, SSH and PostgreSQL
// greeters), tcpdump captures each scenario, and flowlens and the installed ndpiReader identify the
// same file. Measured as `npm run eval:dpi` measures: master protocol of the flows ndpiReader labels
// with one of EVAL_PROTOCOLS, and identical server names where it reports one.
//
//   node --import tsx test/dpi/unseen.ts [--keep DIR]   makes the captures, prints the figures and every difference
//   import { makeUnseenCaptures, compareUnseen } ...     used by test/dpi-unseen.test.ts
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { EVAL_PROTOCOLS } from './eval.js';
import { flowlensFlows, ndpiReaderListing } from './midstream.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const SERVER = '127.27.0.2';

/** What the captures need, and the programs whose protocols they add where installed (with the protocol each shows). */
export const UNSEEN_TOOLS = ['tcpdump', 'ndpiReader', 'curl', 'openssl', 'dig', 'python3'];
export const UNSEEN_OPTIONAL_TOOLS: Record<string, string> = {
  ssh: 'SSH',
  psql: 'PostgreSQL',
  'redis-server': 'Redis',
  mosquitto: 'MQTT',
  mosquitto_pub: 'MQTT',
  'redis-cli': 'Redis',
};

export function installed(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}
export const CLIENT = '127.27.0.1';

/** Runs a client; its failure (a greeter that stops early) does not matter, its traffic does. */
export async function client(cmd: string, args: string[], input?: string): Promise<void> {
  await new Promise<void>((done) => {
    const c = execFile(cmd, args, { timeout: 15_000 }, (err, _out, stderr) => {
      if (err && process.env.FLOWLENS_UNSEEN_DEBUG) console.error(`${cmd} ${args.join(' ')}: ${err.message} ${stderr}`);
      done();
    });
    if (input !== undefined) c.stdin?.end(input);
    else c.stdin?.end();
  });
}

export function waitFor(child: ChildProcess, pattern: RegExp, ms = 15_000): Promise<void> {
  return new Promise((ok, fail) => {
    let seen = '';
    const timer = setTimeout(() => fail(new Error(`timed out waiting for ${pattern}: ${seen}`)), ms);
    const on = (d: Buffer) => {
      seen += d.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        ok();
      }
    };
    child.stdout?.on('data', on);
    child.stderr?.on('data', on);
  });
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGINT');
  await Promise.race([exited, sleep(5000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

/** Captures what `body` makes to and from `host` (SERVER by default) on loopback into `file`. */
export async function capture(file: string, body: () => Promise<void>, host = SERVER): Promise<void> {
  const tcpdump = spawn('tcpdump', ['-i', 'lo', '--immediate-mode', '-U', '-n', '-s', '0', '-w', file, `host ${host}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let said = '';
  tcpdump.stderr?.on('data', (d) => {
    said += d.toString();
  });
  await waitFor(tcpdump, /listening on/);
  try {
    await body();
    await sleep(300);
  } finally {
    await stop(tcpdump);
    if (process.env.FLOWLENS_UNSEEN_DEBUG) console.error(`tcpdump ${file}: ${said} exit ${tcpdump.exitCode} ${tcpdump.signalCode}`);
  }
}

/** A TCP server answering each line (or the first bytes) with what `reply` returns; a greeting first when given. */
function lineServer(port: number, greeting: string | null, reply: (line: string, sock: Socket) => string | null): Promise<Server> {
  const server = createServer((sock) => {
    sock.on('error', () => {});
    if (greeting !== null) sock.write(greeting);
    let pending = '';
    sock.on('data', (d) => {
      pending += d.toString('latin1');
      let i = pending.indexOf('\n');
      while (i >= 0) {
        const line = pending.slice(0, i + 1);
        pending = pending.slice(i + 1);
        const r = reply(line.trim(), sock);
        if (r === null) {
          sock.end();
          return;
        }
        if (r !== '') sock.write(r);
        i = pending.indexOf('\n');
      }
    });
  });
  return new Promise((ok) => server.listen(port, SERVER, () => ok(server)));
}

/** A DNS server over UDP and TCP on port 53: every A query is 192.0.2.1, anything else has no answer. */
function dnsServer(): { close: () => void; ready: Promise<void> } {
  const answer = (q: Buffer): Buffer => {
    let p = 12;
    while (p < q.length && q[p] !== 0) p += q[p] + 1;
    const qEnd = p + 5;
    const qtype = q.readUInt16BE(p + 1);
    const head = Buffer.from(q.subarray(0, 12));
    head[2] = 0x81 | (q[2] & 0x01);
    head[3] = 0x80;
    head.writeUInt16BE(qtype === 1 ? 1 : 0, 6);
    head.writeUInt16BE(0, 8);
    head.writeUInt16BE(0, 10);
    const parts = [head, q.subarray(12, qEnd)];
    if (qtype === 1) parts.push(Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]));
    return Buffer.concat(parts);
  };
  const udp = createSocket('udp4');
  udp.on('message', (m, r) => udp.send(answer(m), r.port, r.address));
  const tcp = createServer((s) => {
    s.on('error', () => {});
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const a = answer(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
        s.write(Buffer.concat([Buffer.from([a.length >> 8, a.length & 255]), a]));
      }
    });
  });
  const ready = Promise.all([new Promise<void>((ok) => udp.bind(53, SERVER, () => ok())), new Promise<void>((ok) => tcp.listen(53, SERVER, () => ok()))]).then(
    () => {},
  );
  return {
    ready,
    close: () => {
      udp.close();
      tcp.close();
    },
  };
}

const closeServer = (s: Server) => new Promise((r) => s.close(r));

/** TLS names the TLS clients ask for. */
const TLS_NAMES = ['www.example.com', 'api.flowlens.test', 'cdn.example.net', 'login.example.org'];
const HTTP_HOSTS = ['www.example.com', 'intranet.local', 'downloads.example.org'];
const DNS_NAMES = ['www.example.com', 'mail.example.org', 'flowlens.test', 'a.b.c.example.net'];

/** Makes the captures in `dir`; returns their paths. Needs root (ports below 1024, tcpdump). */
export async function makeUnseenCaptures(dir: string): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'flowlens-unseen-'));
  const files: string[] = [];
  // The server address on loopback (Linux routes all of 127/8 to lo; the address just has to be bindable).
  try {
    // TLS: openssl s_server on 443 (TLS 1.3 and 1.2) and 8443 (TLS 1.2 only), curl, wget and s_client.
    const key = join(work, 'key.pem');
    const cert = join(work, 'cert.pem');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '30',
      '-subj',
      '/CN=www.example.com',
      '-addext',
      'subjectAltName=DNS:www.example.com',
    ]);
    const tls = join(dir, 'tls.pcap');
    await capture(tls, async () => {
      const servers = [443, 8443, 50443].map((port) =>
        spawn('openssl', ['s_server', '-accept', `${SERVER}:${port}`, '-cert', cert, '-key', key, '-www', ...(port === 8443 ? ['-tls1_2'] : [])], {
          stdio: ['pipe', 'pipe', 'pipe'],
        }),
      );
      await Promise.all(servers.map((s) => waitFor(s, /ACCEPT/)));
      try {
        for (const name of TLS_NAMES) {
          await client('curl', ['-sk', '--interface', CLIENT, '--resolve', `${name}:443:${SERVER}`, `https://${name}/`]);
          await client('curl', ['-sk', '--http1.1', '--tls-max', '1.2', '--interface', CLIENT, '--resolve', `${name}:8443:${SERVER}`, `https://${name}:8443/`]);
          await client('openssl', ['s_client', '-connect', `${SERVER}:443`, '-servername', name], 'Q\n');
        }
        await client('wget', ['-q', '-O', '/dev/null', '--no-check-certificate', `--bind-address=${CLIENT}`, `https://${SERVER}/`]);
        // No SNI (an address), TLS 1.2 from s_client, and a port no protocol owns.
        await client('curl', ['-sk', '--interface', CLIENT, `https://${SERVER}/`]);
        await client('openssl', ['s_client', '-connect', `${SERVER}:8443`, '-servername', 'legacy.example.com', '-tls1_2'], 'Q\n');
        await client('curl', ['-sk', '--interface', CLIENT, '--resolve', `odd.example.com:50443:${SERVER}`, 'https://odd.example.com:50443/']);
      } finally {
        for (const s of servers) await stop(s);
      }
    });
    files.push(tls);

    // HTTP: python's http.server on 80 and 8080; curl (several hosts, methods) and wget.
    const http = join(dir, 'http.pcap');
    await capture(http, async () => {
      const servers = [80, 8080, 5000].map((port) =>
        spawn('python3', ['-u', '-m', 'http.server', String(port), '--bind', SERVER, '--directory', work], { stdio: ['ignore', 'pipe', 'pipe'] }),
      );
      await Promise.all(servers.map((s) => waitFor(s, /Serving HTTP/)));
      try {
        for (const host of HTTP_HOSTS) {
          await client('curl', ['-s', '--interface', CLIENT, '-H', `Host: ${host}`, `http://${SERVER}/`]);
          await client('curl', ['-s', '--interface', CLIENT, '-X', 'POST', '-d', 'a=1', '-H', `Host: ${host}:8080`, `http://${SERVER}:8080/cert.pem`]);
        }
        await client('wget', ['-q', '-O', '/dev/null', `--bind-address=${CLIENT}`, `http://${SERVER}:8080/`]);
        await client('curl', ['-s', '-0', '-I', '--interface', CLIENT, '-A', 'flowlens-test/1.0', `http://${SERVER}:5000/`]);
        await client('python3', ['-c', `import urllib.request; urllib.request.urlopen('http://${SERVER}/').read()`]);
      } finally {
        for (const s of servers) await stop(s);
      }
    });
    files.push(http);

    // DNS: dig over UDP and TCP.
    const dns = join(dir, 'dns.pcap');
    await capture(dns, async () => {
      const server = dnsServer();
      await server.ready;
      try {
        for (const name of DNS_NAMES) {
          await client('dig', ['-b', CLIENT, `@${SERVER}`, name, 'A', '+tries=1', '+time=2']);
          await client('dig', ['-b', CLIENT, `@${SERVER}`, name, 'AAAA', '+tries=1', '+time=2']);
        }
        await client('dig', ['-b', CLIENT, `@${SERVER}`, 'tcp.example.com', 'MX', '+tcp', '+tries=1', '+time=2']);
        await client('dig', ['-b', CLIENT, `@${SERVER}`, '-x', '192.0.2.55', '+tries=1', '+time=2']);
        await client('dig', ['-b', CLIENT, `@${SERVER}`, 'example.org', 'TXT', '+dnssec', '+tries=1', '+time=2']);
      } finally {
        server.close();
      }
    });
    files.push(dns);

    // Mail and FTP: curl against greeters that answer as the protocols do.
    const mail = join(dir, 'mail-ftp.pcap');
    writeFileSync(join(work, 'mail.txt'), 'Subject: hello\r\n\r\nbody\r\n');
    await capture(mail, async () => {
      let inData = false;
      const smtp = await lineServer(25, '220 mx.example.com ESMTP\r\n', (line) => {
        if (inData) {
          if (line === '.') inData = false;
          return line === '.' ? '250 2.0.0 queued\r\n' : '';
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') return '250-mx.example.com\r\n250 SIZE 10000000\r\n';
        if (verb === 'DATA') {
          inData = true;
          return '354 go ahead\r\n';
        }
        if (verb === 'QUIT') return null;
        return '250 OK\r\n';
      });
      const pop3 = await lineServer(110, '+OK POP3 ready\r\n', (line) => {
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'CAPA') return '+OK\r\nUSER\r\n.\r\n';
        if (verb === 'RETR') return '+OK\r\nSubject: x\r\n\r\nhi\r\n.\r\n';
        if (verb === 'QUIT') return null;
        return '+OK\r\n';
      });
      let authTag = '';
      const imap = await lineServer(143, '* OK IMAP4rev1 ready\r\n', (line) => {
        if (authTag !== '') {
          // The credentials after the '+' continuation.
          const tag = authTag;
          authTag = '';
          return `${tag} OK authenticated\r\n`;
        }
        const [tag, cmd = '', mailbox = ''] = line.split(' ');
        const verb = cmd.toUpperCase();
        if (verb === 'CAPABILITY') return `* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n${tag} OK done\r\n`;
        if (verb === 'AUTHENTICATE') {
          authTag = tag;
          return '+ \r\n';
        }
        if (verb === 'SELECT' || verb === 'EXAMINE') return `* 1 EXISTS\r\n* FLAGS (\\Seen)\r\n${tag} OK [READ-WRITE] ${mailbox} selected\r\n`;
        if (verb === 'LOGOUT') return `* BYE\r\n${tag} OK bye\r\n`;
        return `${tag} OK done\r\n`;
      });
      const ftp = await lineServer(21, '220 FTP ready\r\n', (line) => {
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'USER') return '331 password please\r\n';
        if (verb === 'PASS') return '230 logged in\r\n';
        if (verb === 'PWD') return '257 "/"\r\n';
        if (verb === 'QUIT') return null;
        return '502 not implemented\r\n';
      });
      try {
        await client('curl', [
          '-s',
          '--interface',
          CLIENT,
          `smtp://${SERVER}`,
          '--mail-from',
          'a@example.com',
          '--mail-rcpt',
          'b@example.org',
          '-T',
          join(work, 'mail.txt'),
        ]);
        await client('curl', ['-s', '--interface', CLIENT, `pop3://user:secret@${SERVER}/1`]);
        await client('curl', ['-s', '--interface', CLIENT, `imap://user:secret@${SERVER}/INBOX`, '-X', 'CAPABILITY']);
        await client('curl', ['-s', '--interface', CLIENT, `ftp://user:secret@${SERVER}/`]);
      } finally {
        for (const s of [smtp, pop3, imap, ftp]) await closeServer(s);
      }
    });
    files.push(mail);

    // SSH (a greeter sending a server banner), PostgreSQL (a greeter refusing TLS, then the login),
    // Redis and MQTT (the real servers).
    const services = join(dir, 'services.pcap');
    const mosquittoConf = join(work, 'mosquitto.conf');
    writeFileSync(mosquittoConf, `listener 1883 ${SERVER}\nallow_anonymous true\n`);
    await capture(services, async () => {
      const ssh = createServer((s) => {
        s.on('error', () => {});
        s.write('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n');
        s.once('data', () => setTimeout(() => s.end(), 200));
      });
      await new Promise<void>((ok) => ssh.listen(22, SERVER, () => ok()));
      const pg = createServer((s) => {
        s.on('error', () => {});
        s.on('data', (d) => {
          if (d.length === 8 && d.readUInt32BE(4) === 80877103) s.write('N');
          else s.end(Buffer.concat([Buffer.from('E'), Buffer.from([0, 0, 0, 30]), Buffer.from('SFATAL\0C28000\0Mno such user\0\0')]));
        });
      });
      await new Promise<void>((ok) => pg.listen(5432, SERVER, () => ok()));
      // The real servers only where installed (UNSEEN_OPTIONAL_TOOLS); a missing client makes no traffic.
      const redis = installed('redis-server')
        ? spawn('redis-server', ['--bind', SERVER, '--port', '6379', '--save', '', '--appendonly', 'no', '--dir', work], { stdio: ['ignore', 'pipe', 'pipe'] })
        : null;
      const mosquitto = installed('mosquitto') ? spawn('mosquitto', ['-c', mosquittoConf], { stdio: ['ignore', 'pipe', 'pipe'] }) : null;
      if (redis !== null) await waitFor(redis, /Ready to accept connections/);
      await sleep(500);
      try {
        await client('ssh', [
          '-b',
          CLIENT,
          '-o',
          'BatchMode=yes',
          '-o',
          'StrictHostKeyChecking=no',
          '-o',
          'UserKnownHostsFile=/dev/null',
          '-o',
          'ConnectTimeout=5',
          `user@${SERVER}`,
          'true',
        ]);
        await client('psql', ['-h', SERVER, '-U', 'flowlens', '-d', 'flows', '-c', 'select 1'], '');
        await client('redis-cli', ['-h', SERVER, 'ping']);
        await client('redis-cli', ['-h', SERVER, 'set', 'k', 'v']);
        await client('mosquitto_pub', ['-h', SERVER, '-t', 'flowlens/test', '-m', 'hello']);
        await client('mosquitto_pub', ['-h', SERVER, '-q', '1', '-i', 'sensor-7', '-t', 'flowlens/qos', '-m', '42']);
        await client('redis-cli', ['-h', SERVER, 'get', 'k']);
      } finally {
        if (redis !== null) await stop(redis);
        if (mosquitto !== null) await stop(mosquitto);
        await closeServer(ssh);
        await closeServer(pg);
      }
    });
    files.push(services);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return files;
}

export interface UnseenFigures {
  /** Flows ndpiReader labels with one of EVAL_PROTOCOLS, and how many flowlens labels alike. */
  flows: number;
  agree: number;
  /** Per nDPI master protocol. */
  perProtocol: Record<string, { flows: number; agree: number }>;
  names: number;
  namesIdentical: number;
  /** Every flow ndpiReader lists (any label), for a look at what is outside the figures. */
  listed: number;
  differences: string[];
}

export async function compareUnseen(files: readonly string[]): Promise<UnseenFigures> {
  const out: UnseenFigures = { flows: 0, agree: 0, perProtocol: {}, names: 0, namesIdentical: 0, listed: 0, differences: [] };
  for (const file of files) {
    const name = file.slice(file.lastIndexOf('/') + 1);
    const ours = await flowlensFlows(file, name);
    for (const n of await ndpiReaderListing(file, name)) {
      out.listed++;
      const mine = ours.get(n.key)?.find((c) => c.app === n.master) ?? ours.get(n.key)?.[0];
      if (!EVAL_PROTOCOLS.has(n.master)) {
        out.differences.push(`outside the figures ${name}: ndpiReader ${n.master} flowlens ${mine?.app || '(none)'}: ${n.line.slice(0, 110)}`);
        continue;
      }
      out.flows++;
      const p = (out.perProtocol[n.master] ??= { flows: 0, agree: 0 });
      p.flows++;
      if (mine?.app === n.master) {
        out.agree++;
        p.agree++;
      } else
        out.differences.push(
          `app ${name}: ndpiReader ${n.master} flowlens ${mine ? `${mine.app || '(none)'} [${mine.confidence}]` : '(no flow)'}: ${n.line.slice(0, 110)}`,
        );
      if (n.serverName !== '') {
        out.names++;
        if (mine?.serverName === n.serverName) out.namesIdentical++;
        else out.differences.push(`name ${name} ${n.master}: ndpiReader '${n.serverName}' flowlens '${mine?.serverName ?? '(no flow)'}'`);
      }
    }
  }
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const k = process.argv.indexOf('--keep');
  const dir = k > 0 ? process.argv[k + 1] : mkdtempSync(join(tmpdir(), 'flowlens-unseen-captures-'));
  try {
    const files = await makeUnseenCaptures(dir);
    const r = await compareUnseen(files);
    for (const d of r.differences) console.log(d);
    const pct = (a: number, b: number) => (b === 0 ? '-' : `${((100 * a) / b).toFixed(1)}%`);
    for (const [p, f] of Object.entries(r.perProtocol)) console.log(`  ${p.padEnd(12)} ${f.agree} / ${f.flows}`);
    console.log(`${files.length} captures, ${r.listed} flows ndpiReader lists, ${r.flows} with the issue's protocols`);
    console.log(`  master protocol identical: ${r.agree} / ${r.flows} = ${pct(r.agree, r.flows)}`);
    console.log(`  server names identical: ${r.namesIdentical} / ${r.names} = ${pct(r.namesIdentical, r.names)}`);
  } finally {
    if (k < 0) rmSync(dir, { recursive: true, force: true });
  }
}
