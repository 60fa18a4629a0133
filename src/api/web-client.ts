// Serves the built web client (web/, built by `npm run build:web` into dist/web) at `/`: static
// files with their content types, and index.html for any other page path (the client routes
// itself). Read-only and token-free: the files hold no data; the data comes from /graphql.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
};

/** The built client: dist/web next to the compiled server (dist/api/…) or under the repository (src/api/… run by tsx). */
export function defaultWebRoot(): string | undefined {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const dir of [join(here, '..', 'web'), join(here, '..', '..', 'dist', 'web')]) {
    if (existsSync(join(dir, 'index.html'))) return resolve(dir);
  }
  return undefined;
}

/** Handles GET/HEAD for the client; false when the request is not for it (the caller goes on). */
export async function serveWebClient(root: string | undefined, req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (!root) {
    if (path !== '/') return false;
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('The web client is not built: run `npm run build:web`. The API is at /graphql.\n');
    return true;
  }
  let rel: string;
  try {
    rel = decodeURIComponent(path);
  } catch {
    return false;
  }
  const file = resolve(root, `.${rel.endsWith('/') ? `${rel}index.html` : rel}`);
  if (file !== root && !file.startsWith(root + sep)) return false;
  let target = file;
  let found = await stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!found) {
    // Page paths (no extension) get the app; a missing asset is a 404 from the caller.
    if (extname(rel) !== '') return false;
    target = join(root, 'index.html');
    found = await stat(target).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!found) return false;
  }
  const info = await stat(target);
  const hashed = target.includes(`${sep}assets${sep}`);
  res.writeHead(200, {
    'content-type': TYPES[extname(target).toLowerCase()] ?? 'application/octet-stream',
    'content-length': String(info.size),
    'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
    ...SECURITY_HEADERS,
  });
  if (req.method === 'HEAD') {
    res.end();
    return true;
  }
  await new Promise<void>((done) => {
    const stream = createReadStream(target);
    stream.on('error', () => {
      res.destroy();
      done();
    });
    stream.on('end', done);
    stream.pipe(res);
  });
  return true;
}
