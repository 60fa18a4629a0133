// The current route, following location.hash.
import { parseRoute, type Route } from './routes';

export { anomalyHref, hostHref, parseRoute, type Route } from './routes';

export const router = $state({ route: parseRoute(typeof location === 'undefined' ? '' : location.hash) as Route });

if (typeof window !== 'undefined') {
  window.addEventListener('hashchange', () => {
    router.route = parseRoute(location.hash);
  });
}
