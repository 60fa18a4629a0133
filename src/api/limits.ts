// Limits on what one GraphQL operation may ask for: depth and cost checked at validation, before
// anything runs, and a time limit on queries. The cost is an upper bound of the objects a query can
// return: each field costs 1, and a list field's selection counts once per item it may return
// (its `first`/`limit` argument, the field's default when absent, the maximum page size when
// it comes from a variable: validation runs before variables are known).
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
  maxDepth: number;
  maxCost: number;
  /** Queries only: mutations (uploads) and subscriptions run as long as they need. */
  queryTimeoutMs: number;
}

export const DEFAULT_LIMITS: OperationLimits = { maxDepth: 8, maxCost: 50_000, queryTimeoutMs: 30_000 };

/** List fields whose size is not an argument: items they may return at most. */
const FIXED_LIST_SIZES: Record<string, number> = {
  'Host.series': 200,
  'Query.traffic': 1000,
  // A connection's size is its field's `first`, counted there.
  'FlowConnection.edges': 1,
  'CaptureStatus.recentImports': 20,
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
          if (isIntrospection(sel)) continue; // tools' introspection queries are deep by nature
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

export function costLimitRule(maxCost: number): ValidationRule {
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

    const cost = (parent: GraphQLCompositeType, set: SelectionSetNode, seen: Set<string>): number => {
      let total = 0;
      for (const sel of set.selections) {
        if (sel.kind === Kind.FIELD) {
          if (isIntrospection(sel)) continue;
          const def = isObjectType(parent) || isInterfaceType(parent) ? parent.getFields()[sel.name.value] : undefined;
          const child: GraphQLNamedType | undefined = def ? getNamedType(def.type) : undefined;
          const inner = sel.selectionSet && child && isCompositeType(child) ? cost(child, sel.selectionSet, seen) : 0;
          total += 1 + listSize(parent, sel) * inner;
        } else if (sel.kind === Kind.INLINE_FRAGMENT) {
          const cond = sel.typeCondition ? schema.getType(sel.typeCondition.name.value) : parent;
          total += cost(cond && isCompositeType(cond) ? cond : parent, sel.selectionSet, seen);
        } else {
          const name = sel.name.value;
          const frag = context.getFragment(name);
          if (!frag || seen.has(name)) continue;
          const cond = schema.getType(frag.typeCondition.name.value);
          total += cost(cond && isCompositeType(cond) ? cond : parent, frag.selectionSet, new Set(seen).add(name));
        }
      }
      return total;
    };

    return {
      OperationDefinition(node) {
        const root = schema.getRootType(node.operation);
        if (!root) return;
        const c = cost(root, node.selectionSet, new Set());
        if (c > maxCost) {
          context.reportError(
            new GraphQLError(`query cost ${c} exceeds the maximum of ${maxCost}: ask for fewer items (first/limit) or fewer fields`, {
              nodes: [node],
              extensions: { code: 'QUERY_TOO_COSTLY' },
            }),
          );
        }
      },
    };
  };
}

/** Adds the depth and cost rules and the query time limit. */
export function useOperationLimits(limits: OperationLimits): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(depthLimitRule(limits.maxDepth));
      addValidationRule(costLimitRule(limits.maxCost));
    },
    onExecute({ args, executeFn, setExecuteFn }) {
      if (getOperationAST(args.document, args.operationName)?.operation !== 'query') return;
      setExecuteFn((a) => {
        let timer: NodeJS.Timeout | undefined;
        // The store query goes on in the background; the client gets a clear error meanwhile.
        const timeout = new Promise<ExecutionResult>((resolve) => {
          timer = setTimeout(
            () =>
              resolve({
                errors: [
                  new GraphQLError(`the query took longer than ${limits.queryTimeoutMs} ms and was stopped: narrow the range or ask for less`, {
                    extensions: { code: 'QUERY_TIMEOUT' },
                  }),
                ],
              }),
            limits.queryTimeoutMs,
          );
        });
        return Promise.race([Promise.resolve(executeFn(a)), timeout]).finally(() => clearTimeout(timer));
      });
    },
  };
}
