// Admission of a custom resource against its version's structural schema, in the apiserver's order:
// prune unknown fields → apply defaults → validate the schema → run CEL rules (skipped after blocking errors).
import * as cause from "./causes.js";
import { runCelRules, schemaHasRules } from "./cel.js";
import { applyDefaultsInPlace } from "./defaults.js";
import { pruneInPlace } from "./prune.js";
import {
  deepClone,
  isPlainObject,
  type AdmitResult,
  type FieldCause,
  type FieldValidation,
} from "./types.js";
import { jsonTypeOf, validateValue } from "./validate.js";

export interface AdmitOptions {
  schema: Record<string, unknown>;
  object: unknown;
  oldObject?: unknown;
  fieldValidation?: FieldValidation;
}

/**
 * Prunes, defaults and validates `object` (never throws). Unknown fields become causes with reason
 * `UNKNOWN_FIELD_REASON` under Strict (the server answers 400 `strict decoding error: unknown field "…"`; no other
 * causes are reported then, as decoding fails first), `unknown field "…"` warnings under Warn, nothing under
 * Ignore (the default is Warn, as on the apiserver). All other causes are 422 `Invalid`. Root-level rule errors
 * are reported at `ROOT_FIELD` ("<nil>").
 */
export function admitCustomResource(opts: AdmitOptions): AdmitResult {
  const warnings: string[] = [];
  if (!isPlainObject(opts.object)) {
    return {
      object: {},
      causes: [
        cause.typeInvalid(
          "",
          jsonTypeOf(opts.object),
          `in body must be of type object: "${jsonTypeOf(opts.object)}"`,
        ),
      ],
      warnings,
    };
  }
  const object = deepClone(opts.object);
  const causes: FieldCause[] = [];
  try {
    const pruned = pruneInPlace(object, opts.schema, "", true);
    // The apiserver defaults fieldValidation to Warn (since 1.23).
    const mode = opts.fieldValidation ?? "Warn";
    if (pruned.length > 0 && mode === "Strict")
      return { object, causes: pruned.map(cause.unknownField), warnings };
    if (mode === "Warn") for (const p of pruned) warnings.push(`unknown field ${JSON.stringify(p)}`);

    applyDefaultsInPlace(object, opts.schema, true);
    validateValue(object, opts.schema, "", causes, true);

    // Without rules the apiserver builds no CEL validator, so there is nothing to skip or run.
    if (schemaHasRules(opts.schema)) {
      if (causes.some((c) => cause.BLOCKING_REASONS.has(c.reason))) {
        causes.push({
          reason: "FieldValueInvalid",
          field: cause.ROOT_FIELD,
          message: `Invalid value: "null": ${cause.CEL_SKIPPED_MESSAGE}`,
        });
      } else {
        const old = isPlainObject(opts.oldObject) ? { value: opts.oldObject } : undefined;
        runCelRules(object, opts.schema, old, "", causes, true);
      }
    }
  } catch (e) {
    causes.push({
      reason: "InternalError",
      field: "",
      message: `Internal error: ${e instanceof Error ? e.message : String(e)}`,
    });
  }
  return { object, causes, warnings };
}

/** The message of the 400 a real server sends for Strict unknown fields, or undefined when there are none. */
export function strictDecodingMessage(causes: FieldCause[]): string | undefined {
  const unknown = causes.filter((c) => c.reason === cause.UNKNOWN_FIELD_REASON);
  if (unknown.length === 0) return undefined;
  return `strict decoding error: ${unknown.map((c) => c.message).join(", ")}`;
}

/**
 * Applies the schema's defaults to a stored object (the apiserver also defaults on read, so objects pick up
 * defaults added to the CRD later). Returns a new object; never prunes or validates.
 */
export function defaultCustomResource(
  schema: Record<string, unknown>,
  object: Record<string, unknown>,
): Record<string, unknown> {
  const copy = deepClone(object);
  applyDefaultsInPlace(copy, schema, true);
  return copy;
}
