// `x-kubernetes-validations` rules, evaluated with @marcbachmann/cel-js. `self` is the node's value typed as
// Kubernetes maps schema types into CEL (integer → int, number → double, string with format duration →
// duration, date/date-time → timestamp, byte → bytes); `oldSelf` the correlated old value. Rules that mention
// `oldSelf` are transition rules and only run when the old value exists (or with `optionalOldSelf`).
import { Environment, Optional } from "@marcbachmann/cel-js";
import { checkRuleFields } from "./cel-fields.js";
import { escapeCelField } from "./cel-names.js";
import { parseGoDuration, registerKubernetesLibrary } from "./cel-library.js";
import { formatValue, ROOT_FIELD } from "./causes.js";
import { childPath, indexPath, keyPath, resolveRelativePath } from "./paths.js";
import {
  additionalProperties,
  isIntOrString,
  items,
  properties,
  schemaList,
  schemaType,
  stringList,
} from "./schema-node.js";
import { isPlainObject, type FieldCause, type SchemaNode } from "./types.js";

/** One entry of `x-kubernetes-validations`. */
export interface ValidationRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  reason?: string;
  fieldPath?: string;
  optionalOldSelf?: boolean;
}

type Program = ((ctx: Record<string, unknown>) => unknown) & { ast?: unknown };

/** A compiled rule, or why it did not compile. */
export type CompiledRule =
  { ok: true; program: Program; message?: Program; isTransition: boolean } | { ok: false; error: string };

let environment: Environment | undefined;

/** The shared CEL environment (`self`, `oldSelf` and the Kubernetes library); built once, lazily. */
export function celEnvironment(): Environment {
  if (!environment) {
    const env = new Environment({ enableOptionalTypes: true, homogeneousAggregateLiterals: false });
    env.registerVariable("self", "dyn").registerVariable("oldSelf", "dyn");
    registerKubernetesLibrary(env);
    environment = env;
  }
  return environment;
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n")[0] ?? msg;
}

/** Compiles (parses and type-checks) one CEL expression; the error text when it does not compile. */
export function compileExpression(expr: string, want: "bool" | "string"): Program | string {
  const env = celEnvironment();
  try {
    const checked = env.check(expr);
    if (!checked.valid) return firstLine(checked.error);
    if (checked.type !== want && checked.type !== "dyn")
      return `${want === "bool" ? "rule" : "messageExpression"} must evaluate to ${want}, not ${String(checked.type)}`;
    return env.parse(expr) as unknown as Program;
  } catch (e) {
    return firstLine(e);
  }
}

export function mentionsOldSelf(rule: string): boolean {
  return /\boldSelf\b/.test(rule);
}

const cache = new WeakMap<SchemaNode, Map<string, CompiledRule>>();

/**
 * Compiles a rule of a schema node (syntax, overloads, fields read from `self` against the schema), cached per
 * (schema node, rule, messageExpression). `isRoot` marks the CRD's root schema, where `self.metadata` has only
 * `name` and `generateName`.
 */
export function compileRule(node: SchemaNode, rule: ValidationRule, isRoot = false): CompiledRule {
  let perNode = cache.get(node);
  if (!perNode) {
    perNode = new Map();
    cache.set(node, perNode);
  }
  const key = `${isRoot ? "root" : ""}\u0000${rule.rule}\u0000${rule.messageExpression ?? ""}`;
  const hit = perNode.get(key);
  if (hit) return hit;
  let compiled: CompiledRule;
  const program = compileExpression(rule.rule, "bool");
  const fieldError = typeof program === "string" ? undefined : checkRuleFields(program.ast, node, isRoot);
  if (typeof program === "string") compiled = { ok: false, error: `compilation failed: ${program}` };
  else if (fieldError) compiled = { ok: false, error: `compilation failed: ${fieldError}` };
  else {
    let message: Program | undefined;
    let error: string | undefined;
    if (rule.messageExpression !== undefined) {
      const m = compileExpression(rule.messageExpression, "string");
      const mFieldError = typeof m === "string" ? undefined : checkRuleFields(m.ast, node, isRoot);
      if (typeof m === "string") error = `messageExpression compilation failed: ${m}`;
      else if (mFieldError) error = `messageExpression compilation failed: ${mFieldError}`;
      else message = m;
    }
    compiled = error
      ? { ok: false, error }
      : { ok: true, program, isTransition: mentionsOldSelf(rule.rule), ...(message ? { message } : {}) };
  }
  perNode.set(key, compiled);
  return compiled;
}

const hasRulesCache = new WeakMap<SchemaNode, boolean>();

/** Whether any node of the schema carries `x-kubernetes-validations` (the apiserver builds no CEL validator otherwise). */
export function schemaHasRules(schema: SchemaNode): boolean {
  const hit = hasRulesCache.get(schema);
  if (hit !== undefined) return hit;
  let found = rulesOf(schema).length > 0;
  const children: unknown[] = [
    ...Object.values(properties(schema) ?? {}),
    schema.additionalProperties,
    schema.items,
    ...schemaList(schema.allOf),
  ];
  for (const c of children) if (!found && isPlainObject(c)) found = schemaHasRules(c);
  hasRulesCache.set(schema, found);
  return found;
}

/** The rules of a schema node, ignoring malformed entries. */
export function rulesOf(schema: SchemaNode): ValidationRule[] {
  const raw = schema["x-kubernetes-validations"];
  if (!Array.isArray(raw)) return [];
  return raw.filter((r): r is ValidationRule => isPlainObject(r) && typeof r.rule === "string");
}

/** Conversions already made during one admission, per (JSON object or array, schema node). */
export type ConversionCache = WeakMap<object, Map<SchemaNode | undefined, unknown>>;

/** Converts a JSON value into the CEL value Kubernetes gives `self` for that schema. */
export function toCelValue(value: unknown, schema: SchemaNode | undefined, cache?: ConversionCache): unknown {
  if (cache && typeof value === "object" && value !== null) {
    let perValue = cache.get(value);
    if (!perValue) {
      perValue = new Map();
      cache.set(value, perValue);
    }
    if (perValue.has(schema)) return perValue.get(schema);
    const converted = convert(value, schema, cache);
    perValue.set(schema, converted);
    return converted;
  }
  return convert(value, schema, cache);
}

function convert(
  value: unknown,
  schema: SchemaNode | undefined,
  cache: ConversionCache | undefined,
): unknown {
  if (value === null || value === undefined) return null;
  const s = schema ?? {};
  if (typeof value === "number") {
    if (isIntOrString(s) || schemaType(s) === "integer" || (schema === undefined && Number.isInteger(value)))
      return Number.isInteger(value) ? BigInt(value) : value;
    return value;
  }
  if (typeof value === "string") {
    const format = typeof s.format === "string" ? s.format : "";
    if (format === "duration") return parseGoDuration(value) ?? value;
    if (format === "date-time" || format === "datetime" || format === "date") {
      const t = Date.parse(value);
      return Number.isNaN(t) ? value : new Date(t);
    }
    if (format === "byte") return Uint8Array.from(Buffer.from(value, "base64"));
    return value;
  }
  if (Array.isArray(value)) {
    const itemSchema = schema ? items(s) : undefined;
    return value.map((v) => toCelValue(v, itemSchema, cache));
  }
  if (isPlainObject(value)) {
    const props = schema ? properties(s) : undefined;
    const additional = schema ? additionalProperties(s) : undefined;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      // Null-valued fields are absent in CEL (`has()` is false); properties are read as (escaped) fields; map keys stay as they are.
      if (v === undefined || (v === null && props)) continue;
      out[props ? escapeCelField(k) : k] = toCelValue(
        v,
        props?.[k] ?? (props ? undefined : additional),
        cache,
      );
    }
    return out;
  }
  return value;
}

const REASON_BODY: Record<string, (type: string, msg: string) => string> = {
  FieldValueForbidden: (_t, m) => `Forbidden: ${m}`,
  FieldValueRequired: (_t, m) => `Required value: ${m}`,
  FieldValueDuplicate: (t) => `Duplicate value: ${formatValue(t)}`,
};

function ruleCause(
  field: string,
  schema: SchemaNode,
  reason: string | undefined,
  message: string,
): FieldCause {
  const type = schemaType(schema) ?? "";
  const r = reason && REASON_BODY[reason] ? reason : "FieldValueInvalid";
  const body = REASON_BODY[r]?.(type, message) ?? `Invalid value: ${formatValue(type)}: ${message}`;
  return { reason: r, field, message: body };
}

function lowerFirst(s: string): string {
  return s.length > 0 ? (s[0] ?? "").toLowerCase() + s.slice(1) : s;
}

function evaluateRule(
  node: SchemaNode,
  rule: ValidationRule,
  self: unknown,
  old: { value: unknown } | undefined,
  path: string,
  causes: FieldCause[],
  isRoot: boolean,
  cache: ConversionCache,
): void {
  const compiled = compileRule(node, rule, isRoot);
  const type = schemaType(node) ?? "";
  // The apiserver's root path is a nil field.Path, which prints as "<nil>".
  const at = path === "" ? ROOT_FIELD : path;
  if (!compiled.ok) {
    causes.push({
      reason: "FieldValueInvalid",
      field: at,
      message: `Invalid value: ${formatValue(type)}: ${compiled.error}`,
    });
    return;
  }
  if (compiled.isTransition && !old && rule.optionalOldSelf !== true) return;
  const ctx: Record<string, unknown> = { self: toCelValue(self, node, cache) };
  if (compiled.isTransition) {
    const oldCel = old ? toCelValue(old.value, node, cache) : undefined;
    ctx.oldSelf = rule.optionalOldSelf === true ? (old ? Optional.of(oldCel) : Optional.none()) : oldCel;
  }
  let result: unknown;
  try {
    result = compiled.program(ctx);
  } catch (e) {
    const err = lowerFirst(firstLine(e));
    const detail =
      err.includes("no matching overload") || err.startsWith("no such overload")
        ? `'${err}': call arguments did not match a supported operator, function or macro signature for rule: ${rule.rule}`
        : `${err} evaluating rule: ${rule.rule}`;
    causes.push({
      reason: "FieldValueInvalid",
      field: at,
      message: `Invalid value: ${formatValue(type)}: ${detail}`,
    });
    return;
  }
  if (result === true) return;
  if (typeof result !== "boolean") {
    causes.push({
      reason: "FieldValueInvalid",
      field: at,
      message: `Invalid value: ${formatValue(type)}: rule did not evaluate to a bool: ${rule.rule}`,
    });
    return;
  }
  let message =
    rule.message !== undefined && rule.message.trim() !== "" ? rule.message : `failed rule: ${rule.rule}`;
  if (compiled.message) {
    try {
      const m = compiled.message(ctx);
      if (typeof m === "string" && m.trim() !== "" && !/[\r\n]/.test(m)) message = m;
    } catch {
      // Kubernetes falls back to `message` (or the default) when messageExpression fails.
    }
  }
  const field = rule.fieldPath ? (resolveRelativePath(path, rule.fieldPath) ?? at) : at;
  causes.push(ruleCause(field, node, rule.reason, message));
}

/** Matches an element of a new `x-kubernetes-list-type: map` list to the old element with the same keys. */
function correlateListMap(
  oldList: unknown,
  schema: SchemaNode,
  item: unknown,
): { value: unknown } | undefined {
  if (!Array.isArray(oldList) || !isPlainObject(item)) return undefined;
  const keys = stringList(schema["x-kubernetes-list-map-keys"]);
  const found = oldList.find((o) => isPlainObject(o) && keys.every((k) => o[k] === item[k]));
  return found === undefined ? undefined : { value: found };
}

/**
 * Runs every `x-kubernetes-validations` rule in the schema against `value` (and `old`, when updating),
 * depth first, children before the node itself as the apiserver does.
 */
export function runCelRules(
  value: unknown,
  schema: SchemaNode,
  old: { value: unknown } | undefined,
  path: string,
  causes: FieldCause[],
  isRoot = false,
  cache: ConversionCache = new WeakMap(),
): void {
  if (value === undefined) return;
  if (Array.isArray(value)) {
    const itemSchema = items(schema);
    if (itemSchema) {
      const isMap = schema["x-kubernetes-list-type"] === "map";
      value.forEach((v, i) => {
        const o = isMap && old ? correlateListMap(old.value, schema, v) : undefined;
        runCelRules(v, itemSchema, o, indexPath(path, i), causes, false, cache);
      });
    }
  } else if (isPlainObject(value)) {
    const props = properties(schema);
    const additional = additionalProperties(schema);
    const oldObj = old && isPlainObject(old.value) ? old.value : undefined;
    for (const [k, v] of Object.entries(value)) {
      if (isRoot && (k === "metadata" || k === "apiVersion" || k === "kind")) continue;
      const o = oldObj && k in oldObj ? { value: oldObj[k] } : undefined;
      const p = props?.[k];
      if (p) runCelRules(v, p, o, childPath(path, k), causes, false, cache);
      else if (additional && !props) runCelRules(v, additional, o, keyPath(path, k), causes, false, cache);
    }
  }
  for (const sub of schemaList(schema.allOf))
    for (const r of rulesOf(sub)) evaluateRule(sub, r, value, old, path, causes, false, cache);
  let self = value;
  let oldSelf = old;
  if (isRoot && isPlainObject(value)) {
    // At the root, rules see only metadata.name and metadata.generateName.
    self = rootView(value);
    oldSelf = old && isPlainObject(old.value) ? { value: rootView(old.value) } : old;
  }
  for (const r of rulesOf(schema)) evaluateRule(schema, r, self, oldSelf, path, causes, isRoot, cache);
}

function rootView(obj: Record<string, unknown>): Record<string, unknown> {
  const meta = isPlainObject(obj.metadata) ? obj.metadata : {};
  const view: Record<string, unknown> = { ...obj, metadata: {} };
  const m: Record<string, unknown> = {};
  if (meta.name !== undefined) m.name = meta.name;
  if (meta.generateName !== undefined) m.generateName = meta.generateName;
  view.metadata = m;
  return view;
}
