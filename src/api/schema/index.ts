// The GraphQL schema: each domain file adds its types and root fields to the shared builder.
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { builder } from './builder.js';
import './flows.js';
import './hosts.js';
import './traffic.js';
import './anomalies.js';
import './imports.js';
import './status.js';
import './ranges.js';
import './packets.js';
import './explore.js';
import './notifications.js';

let schema: GraphQLSchema | undefined;

export function buildSchema(): GraphQLSchema {
  schema ??= builder.toSchema();
  return schema;
}

/** The SDL as checked in at schema/schema.graphql (sorted, so it diffs by content, not file order). */
export function schemaSdl(): string {
  return `${printSchema(lexicographicSortSchema(buildSchema()))}\n`;
}
