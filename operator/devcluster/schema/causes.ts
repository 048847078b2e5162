// Field errors in Kubernetes' wording (apimachinery `field.Error.ErrorBody`), as `StatusCause`s.
import type { FieldCause } from "./types.js";

/** Renders a value the way `field.Error` does: strings quoted, numbers and booleans bare, the rest as JSON. */
export function formatValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (v === null || v === undefined) return "null";
  return JSON.stringify(v);
}

function withDetail(body: string, detail: string | undefined): string {
  return detail ? `${body}: ${detail}` : body;
}

export function invalid(field: string, value: unknown, detail: string): FieldCause {
  return {
    reason: "FieldValueInvalid",
    field,
    message: withDetail(`Invalid value: ${formatValue(value)}`, detail),
  };
}

/** `field.TypeInvalid`: the value shown is the JSON type name of what was sent. */
export function typeInvalid(field: string, valueType: string, detail: string): FieldCause {
  return {
    reason: "FieldValueTypeInvalid",
    field,
    message: withDetail(`Invalid value: ${formatValue(valueType)}`, detail),
  };
}

export function required(field: string, detail?: string): FieldCause {
  return { reason: "FieldValueRequired", field, message: withDetail("Required value", detail) };
}

export function forbidden(field: string, detail?: string): FieldCause {
  return { reason: "FieldValueForbidden", field, message: withDetail("Forbidden", detail) };
}

export function duplicate(field: string, value: unknown): FieldCause {
  return { reason: "FieldValueDuplicate", field, message: `Duplicate value: ${formatValue(value)}` };
}

export function notSupported(field: string, value: unknown, allowed: unknown[]): FieldCause {
  const list = allowed.map(formatValue).join(", ");
  return {
    reason: "FieldValueNotSupported",
    field,
    message: withDetail(`Unsupported value: ${formatValue(value)}`, `supported values: ${list}`),
  };
}

export function tooLong(field: string, max: number): FieldCause {
  return { reason: "FieldValueTooLong", field, message: `Too long: may not be more than ${max} bytes` };
}

export function tooMany(field: string, actual: number, max: number, unit = "items"): FieldCause {
  return {
    reason: "FieldValueTooMany",
    field,
    message: `Too many: ${actual}: must have at most ${max} ${unit}`,
  };
}

/** Reason of the causes `admitCustomResource` reports for unknown fields under `fieldValidation=Strict`. */
export const UNKNOWN_FIELD_REASON = "FieldValueUnknown";

export function unknownField(field: string): FieldCause {
  return { reason: UNKNOWN_FIELD_REASON, field, message: `unknown field ${JSON.stringify(field)}` };
}

/** How the apiserver prints the field of an error about the whole object (a nil `field.Path`). */
export const ROOT_FIELD = "<nil>";

/** Reasons that stop CEL rules from running (apiextensions `hasBlockingErr`). */
export const BLOCKING_REASONS: ReadonlySet<string> = new Set([
  "FieldValueTypeInvalid",
  "FieldValueNotSupported",
  "FieldValueRequired",
  "FieldValueTooLong",
  "FieldValueTooMany",
]);

export const CEL_SKIPPED_MESSAGE =
  "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";
