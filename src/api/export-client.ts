// Client side of `flowlens export flows --server URL`: the flows of a selection read through a
// running `flowlens serve`'s GraphQL API (the server holds the DuckDB file; a second process cannot
// open it), a page at a time with the cursor, under the same access rules as any API client
// (bearer token; the request is a plain JSON POST, which the server's cross-site check allows).
import { graphqlUrl, postGraphql } from './client.js';
import type { FlowFilter } from '../store/types.js';
import { isoMicros } from '../store/time.js';

/** The API's page size limit (MAX_PAGE_SIZE). */
const PAGE = 1000;

export class RemoteExportError extends Error {}

export interface RemoteSelection {
  /** µs since the epoch. */
  from: number;
  to: number;
  filter?: FlowFilter;
  limit?: number;
}

const flowsQuery = (fields: readonly string[]) =>
  `query Export($from: DateTime!, $to: DateTime!, $filter: FlowFilter, $first: Int!, $after: String) {
  flows(from: $from, to: $to, filter: $filter, first: $first, after: $after, orderBy: TIME) {
    edges { node { ${fields.join(' ')} } }
    pageInfo { hasNextPage endCursor }
  }
}`;

interface FlowsPage {
  edges: { node: Record<string, unknown> }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

async function post(url: string, token: string | undefined, query: string, variables: Record<string, unknown>): Promise<FlowsPage> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const data = await postGraphql<{ flows?: FlowsPage | null }>(url, { body: JSON.stringify({ query, variables }), headers }, (m) => new RemoteExportError(m));
  if (!data?.flows) throw new RemoteExportError(`${url} answered without flows`);
  return data.flows;
}

/** The flows of a selection as the API returns them (its field names and nulls), earliest first. */
export async function* remoteFlows(
  server: string,
  token: string | undefined,
  fields: readonly string[],
  sel: RemoteSelection,
): AsyncGenerator<Record<string, unknown>> {
  const url = graphqlUrl(server);
  const query = flowsQuery(fields);
  let left = sel.limit ?? Number.POSITIVE_INFINITY;
  let after: string | null = null;
  while (left > 0) {
    const page = await post(url, token, query, {
      from: isoMicros(sel.from),
      to: isoMicros(sel.to),
      filter: sel.filter ?? null,
      first: Math.min(PAGE, left),
      after,
    });
    for (const e of page.edges) yield e.node;
    left -= page.edges.length;
    if (!page.pageInfo.hasNextPage || !page.pageInfo.endCursor) return;
    after = page.pageInfo.endCursor;
  }
}
