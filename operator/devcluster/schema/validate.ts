// OpenAPI schema validation of a pruned, defaulted custom resource, worded like kube-openapi's validator as
// the apiextensions apiserver converts it to field errors.
import * as cause from "./causes.js";
import { matchesFormat } from "./formats.js";
import { childPath, indexPath, keyPath } from "./paths.js";
import {
  additionalProperties,
  isIntOrString,
  isNullable,
  items,
  numberOf,
  preservesUnknown,
  properties,
  schemaList,
  schemaType,
  stringList,
} from "./schema-node.js";
import { isPlainObject, type FieldCause, type SchemaNode } from "./types.js";

/** The JSON type name of a value, as used in `must be of type integer: "string"`. */
export function jsonTypeOf(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  if (typeof v === "object") return "object";
  return typeof v;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return false;
}

const regexCache = new Map<string, RegExp | null>();
function compilePattern(p: string): RegExp | null {
  let re = regexCache.get(p);
  if (re === undefined) {
    try {
      re = new RegExp(p, "u");
    } catch {
      re = null;
    }
    if (regexCache.size > 1000) regexCache.clear();
    regexCache.set(p, re);
  }
  return re;
}

/** Validates `value` at `path` against `schema`, appending causes. Root `apiVersion`/`kind`/`metadata` are skipped. */
export function validateValue(
  value: unknown,
  schema: SchemaNode,
  path: string,
  causes: FieldCause[],
  isRoot = false,
): void {
  const body = path === "" ? "" : path;
  const type = schemaType(schema);
  if (value === null || value === undefined) {
    if (!isNullable(schema) && (type !== undefined || isIntOrString(schema)))
      causes.push(
        cause.typeInvalid(
          path,
          "null",
          `${body} in body must be of type ${type ?? "integer-or-string"}: "null"`,
        ),
      );
    return;
  }
  const actual = jsonTypeOf(value);
  if (isIntOrString(schema)) {
    if (actual !== "integer" && actual !== "string") {
      causes.push(
        cause.typeInvalid(path, actual, `${body} in body must be of type integer-or-string: "${actual}"`),
      );
      return;
    }
  } else if (
    type !== undefined &&
    type !== "" &&
    !(type === "number" && actual === "integer") &&
    type !== actual
  ) {
    causes.push(cause.typeInvalid(path, actual, `${body} in body must be of type ${type}: "${actual}"`));
    return;
  }

  validateEnum(value, schema, path, causes);
  if (typeof value === "number") validateNumber(value, schema, path, body, causes);
  if (typeof value === "string") validateString(value, schema, path, body, causes);
  if (Array.isArray(value)) validateArray(value, schema, path, body, causes);
  else if (isPlainObject(value)) validateObject(value, schema, path, body, causes, isRoot);
  validateJunctors(value, schema, path, body, causes);
}

function validateEnum(value: unknown, schema: SchemaNode, path: string, causes: FieldCause[]): void {
  if (!Array.isArray(schema.enum)) return;
  const allowed: unknown[] = schema.enum;
  if (!allowed.some((a) => deepEqual(a, value))) causes.push(cause.notSupported(path, value, allowed));
}

function validateNumber(v: number, s: SchemaNode, path: string, body: string, causes: FieldCause[]): void {
  const max = numberOf(s, "maximum");
  if (max !== undefined) {
    if (s.exclusiveMaximum === true ? v >= max : v > max) {
      const how = s.exclusiveMaximum === true ? "less than" : "less than or equal to";
      causes.push(cause.invalid(path, v, `${body} in body should be ${how} ${max}`));
    }
  }
  const min = numberOf(s, "minimum");
  if (min !== undefined) {
    if (s.exclusiveMinimum === true ? v <= min : v < min) {
      const how = s.exclusiveMinimum === true ? "greater than" : "greater than or equal to";
      causes.push(cause.invalid(path, v, `${body} in body should be ${how} ${min}`));
    }
  }
  const mult = numberOf(s, "multipleOf");
  if (mult !== undefined && mult > 0) {
    const q = v / mult;
    if (Math.abs(q - Math.round(q)) > 1e-9)
      causes.push(cause.invalid(path, v, `${body} in body should be a multiple of ${mult}`));
  }
  const format = typeof s.format === "string" ? s.format : "";
  if (format === "int32" && (v < -2147483648 || v > 2147483647))
    causes.push(cause.invalid(path, v, `${body} in body must be of type int32: "${v}"`));
}

function validateString(v: string, s: SchemaNode, path: string, body: string, causes: FieldCause[]): void {
  const len = [...v].length;
  const maxLength = numberOf(s, "maxLength");
  if (maxLength !== undefined && len > maxLength) causes.push(cause.tooLong(path, maxLength));
  const minLength = numberOf(s, "minLength");
  if (minLength !== undefined && len < minLength)
    causes.push(cause.invalid(path, v, `${body} in body should be at least ${minLength} chars long`));
  if (typeof s.pattern === "string") {
    const re = compilePattern(s.pattern);
    if (re && !re.test(v)) causes.push(cause.invalid(path, v, `${body} in body should match '${s.pattern}'`));
  }
  if (typeof s.format === "string" && !matchesFormat(s.format, v))
    causes.push(cause.invalid(path, v, `${body} in body must be of type ${s.format}: ${JSON.stringify(v)}`));
}

function validateArray(v: unknown[], s: SchemaNode, path: string, body: string, causes: FieldCause[]): void {
  const maxItems = numberOf(s, "maxItems");
  if (maxItems !== undefined && v.length > maxItems) causes.push(cause.tooMany(path, v.length, maxItems));
  const minItems = numberOf(s, "minItems");
  if (minItems !== undefined && v.length < minItems)
    causes.push(cause.invalid(path, v.length, `${body} in body should have at least ${minItems} items`));
  if (s.uniqueItems === true && v.some((x, i) => v.findIndex((y) => deepEqual(x, y)) !== i))
    causes.push(cause.invalid(path, "array", `${body} in body shouldn't contain duplicates`));
  const itemSchema = items(s);
  if (itemSchema) v.forEach((x, i) => validateValue(x, itemSchema, indexPath(path, i), causes));
  validateListType(v, s, path, causes);
}

/** `x-kubernetes-list-type: set|map` uniqueness: the second and later occurrences are `Duplicate value`. */
function validateListType(v: unknown[], s: SchemaNode, path: string, causes: FieldCause[]): void {
  const listType = s["x-kubernetes-list-type"];
  if (listType === "set") {
    const seen: unknown[] = [];
    v.forEach((x, i) => {
      if (seen.some((y) => deepEqual(x, y))) causes.push(cause.duplicate(indexPath(path, i), x));
      else seen.push(x);
    });
  } else if (listType === "map") {
    const keys = stringList(s["x-kubernetes-list-map-keys"]);
    const seen = new Set<string>();
    v.forEach((x, i) => {
      if (!isPlainObject(x)) return;
      const keyObj: Record<string, unknown> = {};
      for (const k of keys) if (k in x) keyObj[k] = x[k];
      const id = JSON.stringify(keys.map((k) => x[k] ?? null));
      if (seen.has(id)) causes.push(cause.duplicate(indexPath(path, i), keyObj));
      else seen.add(id);
    });
  }
}

function validateObject(
  v: Record<string, unknown>,
  s: SchemaNode,
  path: string,
  body: string,
  causes: FieldCause[],
  isRoot: boolean,
): void {
  for (const r of stringList(s.required)) {
    if (!(r in v) || v[r] === undefined) causes.push(cause.required(childPath(path, r)));
  }
  const n = Object.keys(v).length;
  const maxProps = numberOf(s, "maxProperties");
  if (maxProps !== undefined && n > maxProps) causes.push(cause.tooMany(path, n, maxProps, "properties"));
  const minProps = numberOf(s, "minProperties");
  if (minProps !== undefined && n < minProps)
    causes.push(cause.invalid(path, n, `${body} in body should have at least ${minProps} properties`));
  const props = properties(s);
  const additional = additionalProperties(s);
  for (const [key, child] of Object.entries(v)) {
    if (isRoot && (key === "apiVersion" || key === "kind")) continue;
    if (isRoot && key === "metadata") {
      validateMetadata(child, props?.metadata, causes);
      continue;
    }
    const p = props?.[key];
    if (p) validateValue(child, p, childPath(path, key), causes);
    else if (additional && !props) validateValue(child, additional, keyPath(path, key), causes);
    else if (s.additionalProperties === false && !preservesUnknown(s))
      causes.push(cause.forbidden(childPath(path, key), "additional properties are not allowed"));
  }
}

/** Only `metadata.name` and `metadata.generateName` may carry schema constraints in a CRD. */
function validateMetadata(meta: unknown, schema: SchemaNode | undefined, causes: FieldCause[]): void {
  if (!schema || !isPlainObject(meta)) return;
  const props = properties(schema);
  for (const key of ["name", "generateName"]) {
    const p = props?.[key];
    if (p && meta[key] !== undefined) validateValue(meta[key], p, `metadata.${key}`, causes);
  }
}

function countCauses(value: unknown, schema: SchemaNode, path: string): number {
  const c: FieldCause[] = [];
  validateValue(value, schema, path, c);
  return c.length;
}

function validateJunctors(
  value: unknown,
  s: SchemaNode,
  path: string,
  body: string,
  causes: FieldCause[],
): void {
  const allOf = schemaList(s.allOf);
  for (const sub of allOf) validateValue(value, sub, path, causes);
  const anyOf = schemaList(s.anyOf);
  if (anyOf.length > 0 && !anyOf.some((sub) => countCauses(value, sub, path) === 0))
    causes.push(cause.invalid(path, value, `${body} in body must validate at least one schema (anyOf)`));
  const oneOf = schemaList(s.oneOf);
  if (oneOf.length > 0 && oneOf.filter((sub) => countCauses(value, sub, path) === 0).length !== 1)
    causes.push(cause.invalid(path, value, `${body} in body must validate one and only one schema (oneOf)`));
  if (isPlainObject(s.not) && countCauses(value, s.not, path) === 0)
    causes.push(cause.invalid(path, value, `${body} in body must not validate the schema (not)`));
}
