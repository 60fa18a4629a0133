// Limits on what one GraphQL operation may ask for, checked before anything runs: how deeply the
// text nests (before parsing), tokens, depth, aliases, store queries and cost (at validation), and
// a time limit on queries that cancels their store queries. Introspection obeys the same limits.
// The cost is an upper bound of the objects a query can return: each field costs 1 (a scalar
// field LEAF_COST: it is one value of an object already loaded), a field that reads the store
// costs STORE_QUERY_COST more, and a list field's selection counts once per item
// it may return (its `first`/`limit` argument, the field's default when absent, the maximum page
// size when it comes from a variable: validation runs before variables are known).
import {
  GraphQLError,
  Kind,
  getNamedType,
  getOperationAST,
  isCompositeType,
  isObjectType,
  isInterfaceType,
  valueFromASTUntyped,
  type ExecutionResult,
  NoSchemaIntrospectionCustomRule,
  parse,
  type OperationDefinitionNode,
  type FieldNode,
  type GraphQLCompositeType,
  type GraphQLNamedType,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { MAX_PAGE_SIZE } from '../store/types.js';

export interface OperationLimits {
  /** Deepest selection, introspection included (the standard introspection query is 15 deep). */
  maxDepth: number;
  maxCost: number;
  /** Store queries one operation may make (a field that reads the store, times the items of the lists around it). */
  maxStoreQueries: number;
  /** Aliased fields in one operation: aliases are how one request repeats a field with new arguments. */
  maxAliases: number;
  /** Queries only: mutations (uploads) and subscriptions run as long as they need. */
  queryTimeoutMs: number;
}

export const DEFAULT_LIMITS: OperationLimits = { maxDepth: 16, maxCost: 50_000, maxStoreQueries: 16, maxAliases: 50, queryTimeoutMs: 30_000 };

/**
 * A field that reads the store declares it with `extensions: STORE_QUERY`: one store query costs
 * this much whatever its `first` (the query aggregates the range before it pages), and counts
 * against maxStoreQueries.
 */
export const STORE_QUERY_COST = 1000;
/**
 * A scalar field: a value of an object its parent field loaded already. At 1, a page of 1,000 flows
 * with every field of the flow record (50 of them) went over the limit, and each field the record
 * gained took items from every page a client could ask for.
 */
export const LEAF_COST = 0.1;
export const STORE_QUERY = { storeQuery: true } as const;
/** One `__schema` or `__type` answer: the whole schema's description, about 100 kB. */
export const INTROSPECTION_COST = 5000;
/** Tokens of one document: the standard introspection query has about 300. */
export const MAX_TOKENS = 20_000;

/** List fields whose size is not an argument: items they may return at most. */
const FIXED_LIST_SIZES: Record<string, number> = {
  'Host.series': 200,
  'Query.traffic': 1000,
  // A connection's size is its field's `first`, counted there.
  'FlowConnection.edges': 1,
  // flowPackets' `first` sizes its packets, counted there.
  'FlowPackets.packets': 1,
  'CaptureStatus.recentImports': 20,
  // explore's limit sizes its items, not the field; its series points are bounded in total
  // (MAX_EXPLORE_POINTS over all items), counted here as 100 items of 50 points.
  'Query.explore': 1,
  'ExploreResult.items': 100,
  'ExploreItem.series': 50,
};
const SIZE_ARGS = ['first', 'limit'];
/** Lists without a size argument (few items, e.g. a summary's files). */
const DEFAULT_LIST_SIZE = 10;

function isIntrospection(field: FieldNode): boolean {
  return field.name.value.startsWith('__');
}

export function depthLimitRule(maxDepth: number): ValidationRule {
  return (context: ValidationContext) => {
    const depth = (set: SelectionSetNode, seen: Set<string>): number => {
      let max = 0;
      for (const sel of set.selections) {
        if (sel.kind === Kind.FIELD) {
          max = Math.max(max, 1 + (sel.selectionSet ? depth(sel.selectionSet, seen) : 0));
        } else if (sel.kind === Kind.INLINE_FRAGMENT) {
          max = Math.max(max, depth(sel.selectionSet, seen));
        } else {
          const name = sel.name.value;
          const frag = context.getFragment(name);
          if (!frag || seen.has(name)) continue; // unknown or cyclic: other rules report it
          max = Math.max(max, depth(frag.selectionSet, new Set(seen).add(name)));
        }
      }
      return max;
    };
    return {
      OperationDefinition(node) {
        const d = depth(node.selectionSet, new Set());
        if (d > maxDepth) {
          context.reportError(
            new GraphQLError(`query depth ${d} exceeds the maximum of ${maxDepth}`, { nodes: [node], extensions: { code: 'QUERY_TOO_DEEP' } }),
          );
        }
      },
    };
  };
}

function isStoreQuery(def: { extensions?: Record<string, unknown> | null } | undefined): boolean {
  return def?.extensions?.storeQuery === true;
}

/** Cost, store queries and aliases of an operation, each against its limit. */
export function costLimitRule(limits: Pick<OperationLimits, 'maxCost' | 'maxStoreQueries' | 'maxAliases'>): ValidationRule {
  return (context: ValidationContext) => {
    const schema = context.getSchema();

    const listSize = (parent: GraphQLCompositeType, field: FieldNode): number => {
      const fixed = FIXED_LIST_SIZES[`${parent.name}.${field.name.value}`];
      if (fixed !== undefined) return fixed;
      const def = isObjectType(parent) || isInterfaceType(parent) ? parent.getFields()[field.name.value] : undefined;
      if (!def) return 1;
      const sizeArg = def.args.find((a) => SIZE_ARGS.includes(a.name));
      if (!sizeArg) return String(def.type).includes('[') ? DEFAULT_LIST_SIZE : 1;
      const given = field.arguments?.find((a) => a.name.value === sizeArg.name);
      if (!given) return typeof sizeArg.defaultValue === 'number' ? sizeArg.defaultValue : MAX_PAGE_SIZE;
      const v = given.value.kind === Kind.VARIABLE ? MAX_PAGE_SIZE : valueFromASTUntyped(given.value);
      return typeof v === 'number' && v > 0 ? v : 1;
    };

    interface Tally {
      cost: number;
      storeQueries: number;
    }
    let aliases = 0;

    const walk = (parent: GraphQLCompositeType, set: SelectionSetNode, seen: Set<string>): Tally => {
      const total: Tally = { cost: 0, storeQueries: 0 };
      const add = (t: Tally, times = 1) => {
        total.cost += t.cost * times;
        total.storeQueries += t.storeQueries * times;
      };
      for (const sel of set.selections) {
        if (sel.kind === Kind.FIELD) {
          if (sel.alias) aliases++;
          if (isIntrospection(sel)) {
            // __typename is a string; __schema and __type describe the whole schema.
            if (sel.name.value !== '__typename') add({ cost: INTROSPECTION_COST, storeQueries: 0 });
            else add({ cost: 1, storeQueries: 0 });
            continue;
          }
          const def = isObjectType(parent) || isInterfaceType(parent) ? parent.getFields()[sel.name.value] : undefined;
          const child: GraphQLNamedType | undefined = def ? getNamedType(def.type) : undefined;
          const inner = sel.selectionSet && child && isCompositeType(child) ? walk(child, sel.selectionSet, seen) : { cost: 0, storeQueries: 0 };
          const store = isStoreQuery(def);
          const leaf = !sel.selectionSet;
          add({ cost: (leaf && !store ? LEAF_COST : 1) + (store ? STORE_QUERY_COST : 0), storeQueries: store ? 1 : 0 });
          add(inner, listSize(parent, sel));
        } else if (sel.kind === Kind.INLINE_FRAGMENT) {
          const cond = sel.typeCondition ? schema.getType(sel.typeCondition.name.value) : parent;
          add(walk(cond && isCompositeType(cond) ? cond : parent, sel.selectionSet, seen));
        } else {
          const name = sel.name.value;
          const frag = context.getFragment(name);
          if (!frag || seen.has(name)) continue;
          const cond = schema.getType(frag.typeCondition.name.value);
          add(walk(cond && isCompositeType(cond) ? cond : parent, frag.selectionSet, new Set(seen).add(name)));
        }
      }
      return total;
    };

    const refuse = (node: OperationDefinitionNode, message: string, code: string) =>
      context.reportError(new GraphQLError(message, { nodes: [node], extensions: { code } }));

    return {
      OperationDefinition(node) {
        const root = schema.getRootType(node.operation);
        if (!root) return;
        aliases = 0;
        const t = walk(root, node.selectionSet, new Set());
        t.cost = Math.ceil(t.cost);
        if (aliases > limits.maxAliases) {
          refuse(node, `the operation has ${aliases} aliases; at most ${limits.maxAliases} are allowed`, 'QUERY_TOO_COSTLY');
        } else if (t.storeQueries > limits.maxStoreQueries) {
          refuse(
            node,
            `the operation makes up to ${t.storeQueries} store queries; at most ${limits.maxStoreQueries} are allowed: send fewer aliases or list fields, or several requests`,
            'QUERY_TOO_COSTLY',
          );
        } else if (t.cost > limits.maxCost) {
          refuse(node, `query cost ${t.cost} exceeds the maximum of ${limits.maxCost}: ask for fewer items (first/limit) or fewer fields`, 'QUERY_TOO_COSTLY');
        }
      },
    };
  };
}

/**
 * How deep a document nests brackets, read before it is parsed: graphql-js parses recursively,
 * and a selection nested 10,000 deep overflows the stack. Strings, block strings and comments
 * do not count.
 */
export function nestingDepth(source: string): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < source.length; i++) {
    const c = source.charCodeAt(i);
    if (c === 0x23 /* # */) {
      while (i < source.length && source.charCodeAt(i) !== 0x0a && source.charCodeAt(i) !== 0x0d) i++;
    } else if (c === 0x22 /* " */) {
      if (source.startsWith('"""', i)) {
        const end = source.indexOf('"""', i + 3);
        i = end < 0 ? source.length : end + 2;
      } else {
        for (i++; i < source.length && source.charCodeAt(i) !== 0x22 && source.charCodeAt(i) !== 0x0a; i++) if (source.charCodeAt(i) === 0x5c) i++;
      }
    } else if (c === 0x7b || c === 0x5b || c === 0x28 /* { [ ( */) {
      if (++depth > max) max = depth;
    } else if (c === 0x7d || c === 0x5d || c === 0x29) {
      depth--;
    }
  }
  return max;
}

/** Cancels the operation's store queries: the context's abort, set per request (see server.ts). */
export interface Cancellable {
  cancel?: (reason: Error) => void;
}

/**
 * Adds the nesting guard before parsing, the depth, cost, store-query and alias rules (and the
 * introspection rule when it is off), and the query time limit, which cancels the store queries
 * still running.
 */
export function useOperationLimits(limits: OperationLimits, opts: { introspection: boolean }): Plugin {
  // Brackets: a selection level is one pair of braces, with room for arguments' objects and lists.
  const maxNesting = limits.maxDepth * 2 + 8;
  return {
    onParse({ params, setParseFn }) {
      const source = typeof params.source === 'string' ? params.source : params.source.body;
      const nesting = nestingDepth(source);
      if (nesting > maxNesting) {
        throw new GraphQLError(`the query nests ${nesting} levels of brackets; at most ${maxNesting} are allowed`, { extensions: { code: 'QUERY_TOO_DEEP' } });
      }
      setParseFn((src, options) => parse(src, { ...options, maxTokens: MAX_TOKENS }));
    },
    onValidate({ addValidationRule }) {
      if (!opts.introspection) addValidationRule(NoSchemaIntrospectionCustomRule);
      addValidationRule(depthLimitRule(limits.maxDepth));
      addValidationRule(costLimitRule(limits));
    },
    onExecute({ args, executeFn, setExecuteFn }) {
      if (getOperationAST(args.document, args.operationName)?.operation !== 'query') return;
      setExecuteFn((a) => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<ExecutionResult>((resolve) => {
          timer = setTimeout(() => {
            const message = `the query took longer than ${limits.queryTimeoutMs} ms and was stopped: narrow the range or ask for less`;
            // The store stops the queries still running and frees what they hold.
            (a.contextValue as Cancellable).cancel?.(new Error(message));
            resolve({ errors: [new GraphQLError(message, { extensions: { code: 'QUERY_TIMEOUT' } })] });
          }, limits.queryTimeoutMs);
        });
        return Promise.race([Promise.resolve(executeFn(a)), timeout]).finally(() => clearTimeout(timer));
      });
    },
  };
}
