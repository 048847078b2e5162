// Defaulting (apiextensions structural `Default`): a `default` fills in a missing field; `null` in a field
// that is not `nullable` is dropped first (and then defaulted). Parents are never created unless they carry a
// default of their own; defaults inserted here are walked too, so nested defaults apply inside them.
import { additionalProperties, isNullable, items, properties } from "./schema-node.js";
import { deepClone, isPlainObject, type SchemaNode } from "./types.js";

const ROOT_SKIPPED = new Set(["apiVersion", "kind", "metadata"]);

export function applyDefaultsInPlace(value: unknown, schema: SchemaNode, isRoot: boolean): void {
  if (Array.isArray(value)) {
    const itemSchema = items(schema);
    if (itemSchema) for (const v of value) applyDefaultsInPlace(v, itemSchema, false);
    return;
  }
  if (!isPlainObject(value)) return;
  const props = properties(schema);
  if (props) {
    for (const [key, propSchema] of Object.entries(props)) {
      if (isRoot && ROOT_SKIPPED.has(key)) continue;
      if (value[key] === null && !isNullable(propSchema)) delete value[key];
      if (!(key in value) && propSchema.default !== undefined) value[key] = deepClone(propSchema.default);
      if (key in value) applyDefaultsInPlace(value[key], propSchema, false);
    }
    return;
  }
  const additional = additionalProperties(schema);
  if (additional) {
    for (const key of Object.keys(value)) {
      if (value[key] === null && !isNullable(additional)) delete value[key];
      else applyDefaultsInPlace(value[key], additional, false);
    }
  }
}
