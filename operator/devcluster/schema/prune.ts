// Pruning of fields the structural schema does not specify (apiextensions `pruning`).
// Fields under `x-kubernetes-preserve-unknown-fields: true` are kept; `apiVersion`/`kind`/`metadata` at the
// root (and in `x-kubernetes-embedded-resource` nodes) are never pruned. Returns the pruned paths.
import { childPath, indexPath, keyPath } from "./paths.js";
import {
  additionalProperties,
  isEmbeddedResource,
  items,
  preservesUnknown,
  properties,
} from "./schema-node.js";
import { isPlainObject, type SchemaNode } from "./types.js";

const ALWAYS_KEPT = new Set(["apiVersion", "kind", "metadata"]);

/** Prunes `value` in place against `schema`; returns the paths of removed fields in document order. */
export function pruneInPlace(value: unknown, schema: SchemaNode, path: string, isRoot: boolean): string[] {
  const pruned: string[] = [];
  walk(value, schema, path, isRoot, pruned);
  return pruned;
}

function walk(value: unknown, schema: SchemaNode, path: string, keepMeta: boolean, pruned: string[]): void {
  if (Array.isArray(value)) {
    const itemSchema = items(schema);
    if (itemSchema) value.forEach((v, i) => walk(v, itemSchema, indexPath(path, i), false, pruned));
    return;
  }
  if (!isPlainObject(value)) return;
  const props = properties(schema);
  const additional = additionalProperties(schema);
  const preserve = preservesUnknown(schema);
  const keep = keepMeta || isEmbeddedResource(schema);
  for (const key of Object.keys(value)) {
    const child = value[key];
    const p = childPath(path, key);
    if (keep && ALWAYS_KEPT.has(key)) {
      // metadata is ObjectMeta: the server validates it, the schema does not prune it.
      if (key !== "metadata" && props?.[key]) walk(child, props[key], p, false, pruned);
      continue;
    }
    const propSchema = props?.[key];
    if (propSchema) {
      walk(child, propSchema, p, false, pruned);
    } else if (additional && !props) {
      walk(child, additional, keyPath(path, key), false, pruned);
    } else if (!preserve) {
      delete value[key];
      pruned.push(p);
    }
  }
}
