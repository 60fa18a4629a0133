/**
 * A nats-server locked down as the README's Fleet security section configures one: TLS required
 * with client certificates (a throwaway CA, server and client certificates made with openssl),
 * one user per capture node allowed to publish under its own subject only, and an `api` user, the
 * only one allowed to subscribe. fleetNatsConfig() writes the README's configuration text.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nkeys } from 'nats';
import { freePort } from './cli.js';
import { waitForOutput } from './netns.js';

export const NATS_SERVER = ['/usr/sbin/nats-server', 'nats-server'].find((p) => spawnSync(p, ['--version']).status === 0);
export const OPENSSL = spawnSync('openssl', ['version']).status === 0 ? 'openssl' : undefined;

export interface FleetUser {
  /** The node's subject token (its --node name with '.' and the like as '_'), or 'api'. */
  name: string;
  password?: string;
  /** Public NKey (U...) instead of a user name and password. */
  nkey?: string;
}

/** The README's nats-server configuration: TLS with client certificates, per-node publish rights, an API user that alone may subscribe. */
export function fleetNatsConfig(o: { listen: string; certDir: string; nodes: FleetUser[]; api: FleetUser }): string {
  const who = (u: FleetUser) => (u.nkey ? `nkey: ${u.nkey}` : `user: ${u.name}, password: "${u.password}"`);
  const node = (u: FleetUser) => `    { ${who(u)}, permissions: { publish: { allow: ["flowlens.${u.name}.>"] }, subscribe: { deny: [">"] } } }`;
  return `# flowlens fleet: every client over TLS with a certificate of our CA, one user per node.
listen: ${o.listen}

tls {
  cert_file: "${o.certDir}/server.pem"
  key_file: "${o.certDir}/server-key.pem"
  # clients must present a certificate signed by this CA (--bus-tls-cert/--bus-tls-key)
  ca_file: "${o.certDir}/ca.pem"
  verify: true
  timeout: 2
}

authorization {
  users = [
    # capture nodes: each publishes under flowlens.<its node>. only, and reads nothing
${o.nodes.map(node).join('\n')}
    # API servers (flowlens serve --bus): read every node's events, publish nothing
    { ${who(o.api)}, permissions: { publish: { deny: [">"] }, subscribe: { allow: ["flowlens.>"] } } }
  ]
}
`;
}

export interface Pki {
  dir: string;
  ca: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from another CA. */
  strangerCert: string;
  strangerKey: string;
}

/** A CA, a server certificate for 127.0.0.1/localhost and client certificates, in `dir`. */
export function makePki(dir: string): Pki {
  const ssl = (...args: string[]) => execFileSync(OPENSSL!, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name: string) =>
    ssl('req', '-x509', ...ec, '-keyout', `${name}-key.pem`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=flowlens test ${name}`);
  const leaf = (name: string, caName: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    ssl('req', ...ec, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=flowlens test ${name}`);
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${caName}.pem`,
      '-CAkey',
      `${caName}-key.pem`,
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      `${name}.pem`,
      '-extfile',
      `${name}.ext`,
    );
  };
  ca('ca');
  ca('other-ca');
  leaf('server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'ca', 'extendedKeyUsage=clientAuth\n');
  leaf('stranger', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client-key.pem'),
    strangerCert: join(dir, 'stranger.pem'),
    strangerKey: join(dir, 'stranger-key.pem'),
  };
}

export interface SecureNats {
  port: number;
  /** nats://127.0.0.1:PORT (TLS is negotiated: the server requires it). */
  url: string;
  pki: Pki;
  config: string;
  passwords: Record<string, string>;
  /** File with the NKey seed of the node 'node-c' (an NKey user). */
  nodeCSeedFile: string;
  child: ChildProcess;
  stop(): void;
}

/** Starts nats-server on a free 127.0.0.1 port with fleetNatsConfig(): node-a, node-b (passwords), node-c (NKey), api. */
export async function startSecureNats(dir: string): Promise<SecureNats> {
  const pki = makePki(dir);
  const port = await freePort();
  const passwords = { 'node-a': `a-${process.pid}-secret`, 'node-b': `b-${process.pid}-secret`, api: `api-${process.pid}-secret` };
  const nodeC = nkeys.createUser();
  const nodeCSeedFile = join(dir, 'node-c.nk');
  writeFileSync(nodeCSeedFile, `${new TextDecoder().decode(nodeC.getSeed())}\n`, { mode: 0o600 });
  const config = fleetNatsConfig({
    listen: `127.0.0.1:${port}`,
    certDir: dir,
    nodes: [
      { name: 'node-a', password: passwords['node-a'] },
      { name: 'node-b', password: passwords['node-b'] },
      { name: 'node-c', nkey: nodeC.getPublicKey() },
    ],
    api: { name: 'api', password: passwords.api },
  });
  const confFile = join(dir, 'nats-server.conf');
  writeFileSync(confFile, config);
  const child = spawn(NATS_SERVER!, ['-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  await waitForOutput(child, /Server is ready/);
  return { port, url: `nats://127.0.0.1:${port}`, pki, config, passwords, nodeCSeedFile, child, stop: () => child.kill('SIGKILL') };
}
