// Typed accessors over a JSONSchemaProps node, so the walkers do not repeat casts.
import { isPlainObject, type SchemaNode } from "./types.js";

export function schemaType(s: SchemaNode): string | undefined {
  return typeof s.type === "string" ? s.type : undefined;
}

export function properties(s: SchemaNode): Record<string, SchemaNode> | undefined {
  return isPlainObject(s.properties) ? (s.properties as Record<string, SchemaNode>) : undefined;
}

/** `additionalProperties` when it is a schema (`true` is reported as an empty schema; `false`/absent as undefined). */
export function additionalProperties(s: SchemaNode): SchemaNode | undefined {
  if (isPlainObject(s.additionalProperties)) return s.additionalProperties;
  if (s.additionalProperties === true) return {};
  return undefined;
}

export function items(s: SchemaNode): SchemaNode | undefined {
  return isPlainObject(s.items) ? s.items : undefined;
}

export function preservesUnknown(s: SchemaNode): boolean {
  return s["x-kubernetes-preserve-unknown-fields"] === true;
}

export function isIntOrString(s: SchemaNode): boolean {
  return s["x-kubernetes-int-or-string"] === true;
}

export function isEmbeddedResource(s: SchemaNode): boolean {
  return s["x-kubernetes-embedded-resource"] === true;
}

export function isNullable(s: SchemaNode): boolean {
  return s.nullable === true;
}

export function schemaList(v: unknown): SchemaNode[] {
  return Array.isArray(v) ? v.filter(isPlainObject) : [];
}

export function numberOf(s: SchemaNode, key: string): number | undefined {
  const v = s[key];
  return typeof v === "number" ? v : undefined;
}

export function stringList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}
