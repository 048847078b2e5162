// A small stand-in for what the API server does with the CRD's schema on create: apply the structural
// defaults, then evaluate every x-kubernetes-validations rule (with @marcbachmann/cel-js, as the dev cluster
// does) at the node it is attached to, reporting `path: message` with the rule's fieldPath and messageExpression.
import { parse } from "@marcbachmann/cel-js";
import type { SchemaNode } from "../../../operator/api/crd.js";

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Kubernetes structural defaulting: a missing property with a default gets it, then defaulting recurses. */
export function applyDefaults(schema: SchemaNode, value: unknown): unknown {
  if (isObject(value) && isObject(schema.properties)) {
    const out: Record<string, unknown> = { ...value };
    for (const [key, raw] of Object.entries(schema.properties)) {
      const child = raw as SchemaNode;
      if (out[key] === undefined && "default" in child) out[key] = structuredClone(child.default);
      if (out[key] !== undefined) out[key] = applyDefaults(child, out[key]);
    }
    return out;
  }
  if (Array.isArray(value) && isObject(schema.items))
    return value.map((v) => applyDefaults(schema.items as SchemaNode, v));
  return value;
}

/** JSON value → CEL value: integers become int (bigint) where the schema says integer (or int-or-string). */
export function toCel(schema: SchemaNode, value: unknown): unknown {
  if (typeof value === "number") {
    const intLike = schema.type === "integer" || schema["x-kubernetes-int-or-string"] === true;
    return intLike && Number.isInteger(value) ? BigInt(value) : value;
  }
  if (Array.isArray(value)) return value.map((v) => toCel(isObject(schema.items) ? schema.items : {}, v));
  if (isObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const props = isObject(schema.properties) ? schema.properties : {};
      const child = (props[k] ??
        (isObject(schema.additionalProperties) ? schema.additionalProperties : {})) as SchemaNode;
      out[k] = toCel(child, v);
    }
    return out;
  }
  return value;
}

export interface CelValidation {
  rule: string;
  message: string;
  messageExpression?: string;
  fieldPath?: string;
}

const compiled = new Map<string, ReturnType<typeof parse>>();
function run(expression: string, self: unknown): unknown {
  let fn = compiled.get(expression);
  if (fn === undefined) {
    fn = parse(expression);
    compiled.set(expression, fn);
  }
  return fn({ self } as never);
}

/** Evaluates one rule against `self` (already a CEL value): true = valid; an evaluation error counts as invalid. */
export function evaluateRule(
  v: CelValidation,
  self: unknown,
): { ok: boolean; message: string; error?: string } {
  let ok: boolean;
  let error: string | undefined;
  try {
    ok = run(v.rule, self) === true;
  } catch (err) {
    ok = false;
    error = (err as Error).message;
  }
  if (ok) return { ok, message: "" };
  const message = v.messageExpression === undefined ? v.message : String(run(v.messageExpression, self));
  return { ok, message, ...(error === undefined ? {} : { error }) };
}

export interface KubeProblem {
  path: string;
  message: string;
  /** The CEL rule that failed. */
  rule: string;
}

/** Evaluates every rule in `schema` over `value` (defaults already applied), like the API server. */
export function validateWithCel(schema: SchemaNode, value: unknown, path: string): KubeProblem[] {
  const problems: KubeProblem[] = [];
  const rules = Array.isArray(schema["x-kubernetes-validations"])
    ? (schema["x-kubernetes-validations"] as CelValidation[])
    : [];
  for (const r of rules) {
    const result = evaluateRule(r, toCel(schema, value));
    if (!result.ok)
      problems.push({ path: path + (r.fieldPath ?? ""), message: result.message, rule: r.rule });
  }
  if (isObject(value) && isObject(schema.properties)) {
    for (const [k, raw] of Object.entries(schema.properties)) {
      if (value[k] !== undefined)
        problems.push(...validateWithCel(raw as SchemaNode, value[k], `${path}.${k}`));
    }
  }
  if (Array.isArray(value) && isObject(schema.items)) {
    value.forEach((v, i) =>
      problems.push(...validateWithCel(schema.items as SchemaNode, v, `${path}[${i}]`)),
    );
  }
  return problems;
}

/** Every x-kubernetes-validations entry in a schema, with the node it sits on and that node's path. */
export function collectValidations(
  schema: SchemaNode,
  path: string,
): { path: string; node: SchemaNode; validation: CelValidation }[] {
  const out: { path: string; node: SchemaNode; validation: CelValidation }[] = [];
  for (const v of (schema["x-kubernetes-validations"] as CelValidation[] | undefined) ?? []) {
    out.push({ path, node: schema, validation: v });
  }
  if (isObject(schema.properties)) {
    for (const [k, raw] of Object.entries(schema.properties))
      out.push(...collectValidations(raw as SchemaNode, `${path}.${k}`));
  }
  if (isObject(schema.items)) out.push(...collectValidations(schema.items as SchemaNode, `${path}[]`));
  return out;
}
