// Pure validation: an object → the defaulted, typed policy, or the list of problems, each naming the field
// path (`spec.upstreams[0].retry.backoff.max`) and the rule, in the same words as the CRD's CEL messages.
import type { z } from "zod";
import { DURATION_PATTERN } from "./duration.js";
import { ResiliencePolicy, ResiliencePolicySpec } from "./resilience-policy.js";

/** One thing wrong with an input: where (a field path) and what. */
export interface Problem {
  /** Field path in Kubernetes style: `spec.upstreams[0].retry.backoff.max` (empty for the object itself). */
  readonly path: string;
  readonly message: string;
  /** The id of the cross-field rule (rules.ts) that failed, when it was one. */
  readonly rule?: string;
}

export type ValidationResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problems: Problem[] };

/** `path: message`, or just the message when the path is empty. */
export function formatProblem(p: Problem): string {
  return p.path === "" ? p.message : `${p.path}: ${p.message}`;
}

/** Path segments → `spec.upstreams[0].retry` (keys that are not identifiers are quoted: `labels['a/b']`). */
export function formatPath(segments: readonly PropertyKey[], prefix = ""): string {
  let out = prefix;
  for (const seg of segments) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(String(seg))) out += out === "" ? String(seg) : `.${String(seg)}`;
    else out += `['${String(seg)}']`;
  }
  return out;
}

function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  return typeof v === "object" ? "an object" : typeof v;
}

/** YAML 1.1 (kubectl's) reads unquoted on/off/yes/no/y/n as booleans; say so when a boolean is where a word was. */
function booleanHint(got: unknown): string {
  return typeof got === "boolean"
    ? ` (got boolean ${String(got)}: YAML 1.1, which kubectl uses, reads unquoted on/off/yes/no as booleans; quote the value)`
    : "";
}

/** The message for one zod issue, worded like the API server's (and the CEL rules') errors. */
function messageFor(issue: z.core.$ZodIssue, input: unknown): string {
  switch (issue.code) {
    case "invalid_type": {
      const got = valueAt(input, issue.path);
      if (got === undefined) return "required";
      // Every number in the API is an integer (Kubernetes discourages floats), so "number" means integer here.
      const expected = issue.expected === "int" || issue.expected === "number" ? "integer" : issue.expected;
      const article = /^[aeiou]/.test(expected) ? "an" : "a";
      return `must be ${article} ${expected}, got ${describeValue(got)}${expected === "string" ? booleanHint(got) : ""}`;
    }
    case "too_small": {
      const min = String(issue.minimum);
      if (issue.origin === "string") return `must be at least ${min} characters long`;
      if (issue.origin === "array" || issue.origin === "set") return `must have at least ${min} item(s)`;
      return `must be >= ${min}`;
    }
    case "too_big": {
      const max = String(issue.maximum);
      if (issue.origin === "string") return `must be at most ${max} characters long`;
      if (issue.origin === "array" || issue.origin === "set") return `must have at most ${max} items`;
      return `must be <= ${max}`;
    }
    case "invalid_format": {
      const raw: unknown = "pattern" in issue ? issue.pattern : undefined;
      const pattern =
        raw instanceof RegExp ? raw.source : typeof raw === "string" ? raw.replace(/^\/|\/$/g, "") : "";
      if (pattern === DURATION_PATTERN) return "must be a duration such as 250ms, 5s or 1m30s";
      return pattern !== "" ? `must match ${pattern}` : `must be a valid ${issue.format}`;
    }
    case "invalid_value": {
      const want =
        issue.values.length === 1
          ? `must be ${JSON.stringify(issue.values[0])}`
          : `must be one of: ${issue.values.map((v) => String(v)).join(", ")}`;
      return want + booleanHint(valueAt(input, issue.path));
    }
    case "invalid_union":
      if (valueAt(input, issue.path) === undefined) return "required";
      return "must be a whole number or a duration such as 10s";
    case "not_multiple_of":
      return `must be a multiple of ${String(issue.divisor)}`;
    default:
      return issue.message;
  }
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let node = input;
  for (const seg of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[seg];
  }
  return node;
}

/** zod issues → problems, one per mistake; an unknown key is reported at its own path. */
export function problemsOf(error: z.ZodError, input: unknown, prefix = ""): Problem[] {
  const problems: Problem[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        const hint =
          key === "true" || key === "false"
            ? ' (YAML 1.1, which kubectl uses, reads an unquoted on/off/yes/no key as a boolean: quote it, "on")'
            : "";
        problems.push({ path: formatPath([...issue.path, key], prefix), message: `unknown field${hint}` });
      }
      continue;
    }
    const rule =
      issue.code === "custom" && typeof issue.params?.rule === "string" ? issue.params.rule : undefined;
    problems.push({
      path: formatPath(issue.path, prefix),
      message: capped(messageFor(issue, input)),
      ...(rule === undefined ? {} : { rule }),
    });
  }
  return problems;
}

/** Longest problem message, in characters. */
const MAX_MESSAGE = 512;

/**
 * Messages that quote the input (`must be one of tiers (…)`) are cut: a megabyte-long tier name was echoed
 * whole into the CLI's output, the webhook's answer and the policy status (found by fuzzing).
 */
function capped(message: string): string {
  return message.length <= MAX_MESSAGE ? message : `${message.slice(0, MAX_MESSAGE)}… (cut)`;
}

/**
 * Validates a whole ResiliencePolicy object (apiVersion, kind, metadata, spec, optional status) and returns it
 * with every default applied — the CRD's defaults and the protocol-dependent ones (defaults.ts) — or the
 * problems, paths starting at the object's root (`spec.upstreams[0]…`).
 */
export function validatePolicy(input: unknown): ValidationResult<ResiliencePolicy> {
  const reserved = reservedKeyProblems(input);
  if (reserved.length > 0) return { ok: false, problems: reserved };
  const result = ResiliencePolicy.safeParse(input);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, problems: problemsOf(result.error, input) };
}

/** Validates a spec alone; problem paths start with `spec.`. */
export function validateSpec(input: unknown): ValidationResult<ResiliencePolicySpec> {
  const reserved = reservedKeyProblems(input, "spec");
  if (reserved.length > 0) return { ok: false, problems: reserved };
  const result = ResiliencePolicySpec.safeParse(input);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, problems: problemsOf(result.error, input, "spec") };
}

/**
 * An own `__proto__` key (JSON.parse and YAML make them) anywhere in the input. zod copies map entries and
 * loose objects' extra keys by assignment, and assigning `__proto__` sets the prototype instead of a key: the
 * entry silently vanished (a `matchLabels` entry dropped widened the selector to more pods) or swapped the
 * parsed object's prototype. No Kubernetes name or label key can be `__proto__`, so it is refused outright.
 * Iterative, so a 100 000-deep input cannot overflow the stack; stops at the first few.
 */
function reservedKeyProblems(input: unknown, prefix = ""): Problem[] {
  // Each entry links to its parent rather than carrying a copied path, so deep inputs stay linear.
  interface At {
    node: unknown;
    key: PropertyKey;
    up: At | undefined;
  }
  const pathOf = (at: At | undefined): PropertyKey[] => {
    const out: PropertyKey[] = [];
    for (let a = at; a?.up !== undefined; a = a.up) out.unshift(a.key);
    return out;
  };
  const problems: Problem[] = [];
  const stack: At[] = [{ node: input, key: "", up: undefined }];
  while (stack.length > 0 && problems.length < 10) {
    const at = stack.pop() as At;
    const node = at.node;
    if (node === null || typeof node !== "object") continue;
    if (Array.isArray(node)) {
      node.forEach((child, i) => stack.push({ node: child, key: i, up: at }));
      continue;
    }
    for (const key of Object.keys(node)) {
      if (key === "__proto__")
        problems.push({
          path: formatPath([...pathOf(at), key], prefix),
          message: "reserved key, not allowed",
        });
      else stack.push({ node: (node as Record<string, unknown>)[key], key, up: at });
    }
  }
  return problems;
}
