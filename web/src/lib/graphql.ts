// Typed GraphQL documents: gql.tada infers each document's result and variables from the server's
// schema, through web/src/graphql-env.d.ts, which `npm run schema:web` generates from
// schema/schema.graphql (a test fails when it is stale). Fragments are not masked: a query's result
// includes the fields of the fragments it spreads.
import { initGraphQLTada } from 'gql.tada';
import type { introspection } from '../graphql-env.js';

export const graphql = initGraphQLTada<{
  introspection: introspection;
  disableMasking: true;
  scalars: {
    /** A JSON number (exact up to 2^53-1). */
    Counter: number;
    /** ISO 8601 in UTC with microseconds. */
    DateTime: string;
    File: File;
  };
}>();

export type { ResultOf, TadaDocumentNode, VariablesOf } from 'gql.tada';

/** The API's FlowFilter input. */
export type FlowFilter = ReturnType<typeof graphql.scalar<'FlowFilter'>>;
