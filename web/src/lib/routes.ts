// Hash routes (pure, tested in node): #/ (overview), #/flows, #/history, #/explore[?view], #/anomalies[?id=…], #/host/<ip>.
export type Route =
  | { page: 'overview' }
  | { page: 'flows' }
  | { page: 'history' }
  | { page: 'anomalies'; id?: string }
  | { page: 'host'; ip: string }
  | { page: 'explore'; query: string }
  | { page: 'missing'; path: string };

export function parseRoute(hash: string): Route {
  const full = hash.replace(/^#/, '') || '/';
  const [path, search = ''] = full.split('?', 2);
  const params = new URLSearchParams(search);
  if (path === '/' || path === '') return { page: 'overview' };
  if (path === '/flows') return { page: 'flows' };
  if (path === '/history') return { page: 'history' };
  if (path === '/explore') return { page: 'explore', query: search };
  if (path === '/anomalies') return params.get('id') ? { page: 'anomalies', id: params.get('id')! } : { page: 'anomalies' };
  const host = /^\/host\/([^/]+)$/.exec(path);
  if (host) {
    try {
      return { page: 'host', ip: decodeURIComponent(host[1]) };
    } catch {
      return { page: 'missing', path };
    }
  }
  return { page: 'missing', path };
}

export const hostHref = (ip: string) => `#/host/${encodeURIComponent(ip)}`;
export const anomalyHref = (id: string) => `#/anomalies?id=${encodeURIComponent(id)}`;
