// The fleet bus flags, the same on every command that talks to NATS (capture, run, serve):
// --bus and how to authenticate and encrypt that connection. Each has an env var; secrets are
// better given by env var or file than on the command line, where `ps` shows them.
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { NatsBusOptions } from '../bus/nats.js';
import { type NatsAuth, type NatsTls, parseCreds, parseNkeySeed, urlRequiresTls } from '../bus/security.js';

/** What NatsBus needs from the flags besides this process's node name and logger. */
export type BusSettings = Pick<NatsBusOptions, 'url' | 'auth' | 'tls'>;

/** A file flag's value: the file must exist and be readable now, not at the first connection. */
function readableFile(path: string): string {
  try {
    if (!statSync(path).isFile()) throw new Error('not a regular file');
    accessSync(path, constants.R_OK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw new InvalidArgumentError(`${path}: ${why}.`);
  }
  return path;
}

const AUTH_FLAGS = ['busUser', 'busToken', 'busNkeySeedFile', 'busCreds'] as const;
const FLAG_NAMES: Record<string, string> = {
  busUser: '--bus-user',
  busPassword: '--bus-password',
  busToken: '--bus-token',
  busNkeySeedFile: '--bus-nkey-seed-file',
  busCreds: '--bus-creds',
  busTlsCa: '--bus-tls-ca',
  busTlsCert: '--bus-tls-cert',
  busTlsKey: '--bus-tls-key',
  busTls: '--bus-tls',
};

/** Adds --bus (described by `busDescription`) and its credentials and TLS flags. */
export function addBusOptions(cmd: Command, busDescription: string): Command {
  return cmd
    .addOption(new Option('--bus <url>', busDescription).env('FLOWLENS_BUS'))
    .addOption(new Option('--bus-user <user>', 'NATS user name (with --bus-password)').env('FLOWLENS_BUS_USER'))
    .addOption(new Option('--bus-password <password>', 'NATS password of --bus-user (prefer the env var)').env('FLOWLENS_BUS_PASSWORD'))
    .addOption(new Option('--bus-token <token>', 'NATS authentication token (prefer the env var)').env('FLOWLENS_BUS_TOKEN'))
    .addOption(new Option('--bus-nkey-seed-file <file>', 'file holding an NKey user seed (SU...)').env('FLOWLENS_BUS_NKEY_SEED_FILE').argParser(readableFile))
    .addOption(
      new Option('--bus-creds <file>', 'NATS .creds file (user JWT and NKey seed, as nsc writes it)').env('FLOWLENS_BUS_CREDS').argParser(readableFile),
    )
    .addOption(new Option('--bus-tls', 'require TLS (implied by a tls:// URL and by --bus-tls-ca/--bus-tls-cert)'))
    .addOption(
      new Option('--bus-tls-ca <file>', "PEM CA certificate(s) that signed the NATS server's certificate").env('FLOWLENS_BUS_TLS_CA').argParser(readableFile),
    )
    .addOption(
      new Option('--bus-tls-cert <file>', 'PEM client certificate, for a server that verifies clients (with --bus-tls-key)')
        .env('FLOWLENS_BUS_TLS_CERT')
        .argParser(readableFile),
    )
    .addOption(new Option('--bus-tls-key <file>', 'PEM private key of --bus-tls-cert').env('FLOWLENS_BUS_TLS_KEY').argParser(readableFile))
    .hook('preAction', (command) => {
      try {
        busSettingsFrom(command.opts());
      } catch (err) {
        command.error(`error: ${(err as Error).message}`, { code: 'flowlens.busOptions' });
      }
    });
}

function read(flag: string, path: string, parse: (text: string) => Uint8Array): Uint8Array {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`${flag} ${path}: ${(err as Error).message}`);
  }
  try {
    return parse(text);
  } catch (err) {
    throw new Error(`${flag} ${path}: ${(err as Error).message}`);
  }
}

/**
 * The bus settings from the parsed flags; undefined without --bus. Throws (naming the flag) on a
 * setting that cannot work: a credential without --bus, a user without a password, a certificate
 * without its key, a seed or .creds file that is not one.
 */
export function busSettingsFrom(o: Record<string, unknown>): BusSettings | undefined {
  const url = (o.bus as string | undefined)?.trim() || undefined;
  const given = Object.keys(FLAG_NAMES).filter((k) => o[k] !== undefined && o[k] !== false);
  if (!url) {
    if (given.length > 0) throw new Error(`${FLAG_NAMES[given[0]]} needs --bus`);
    return undefined;
  }
  const str = (k: string) => o[k] as string | undefined;
  if (str('busPassword') !== undefined && str('busUser') === undefined) throw new Error('--bus-password needs --bus-user');
  if (str('busUser') !== undefined && str('busPassword') === undefined) throw new Error('--bus-user needs --bus-password (or FLOWLENS_BUS_PASSWORD)');
  const methods = AUTH_FLAGS.filter((k) => o[k] !== undefined);
  if (methods.length > 1) throw new Error(`${methods.map((k) => FLAG_NAMES[k]).join(' and ')} are different ways to authenticate: give one`);

  let auth: NatsAuth | undefined;
  if (str('busUser') !== undefined) auth = { user: str('busUser')!, pass: str('busPassword')! };
  else if (str('busToken') !== undefined) auth = { token: str('busToken')! };
  else if (str('busNkeySeedFile')) auth = { nkeySeed: read('--bus-nkey-seed-file', str('busNkeySeedFile')!, parseNkeySeed) };
  else if (str('busCreds')) auth = { creds: read('--bus-creds', str('busCreds')!, parseCreds) };

  if (Boolean(str('busTlsCert')) !== Boolean(str('busTlsKey'))) throw new Error('--bus-tls-cert and --bus-tls-key go together');
  let tls: NatsTls | undefined;
  if (o.busTls || str('busTlsCa') || str('busTlsCert') || urlRequiresTls(url)) {
    tls = {};
    if (str('busTlsCa')) tls.caFile = str('busTlsCa');
    if (str('busTlsCert')) tls.certFile = str('busTlsCert');
    if (str('busTlsKey')) tls.keyFile = str('busTlsKey');
  }
  return { url, auth, tls };
}
