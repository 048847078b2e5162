import { admitCustomResource } from "../../../operator/devcluster/schema/index.js";
import type { AdmitResult } from "../../../operator/devcluster/schema/index.js";

/** Wraps a `spec` property schema into a CRD root schema. */
export function rootWith(spec: Record<string, unknown>): Record<string, unknown> {
  return { type: "object", properties: { spec } };
}

export function obj(spec: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: "t.example.com/v1",
    kind: "Thing",
    metadata: { name: "a", namespace: "default" },
    spec,
    ...extra,
  };
}

/** Admits `{spec: value}` against `{spec: schema}`. */
export function admitSpec(
  schema: Record<string, unknown>,
  value: unknown,
  old?: unknown,
  fieldValidation?: "Strict" | "Warn" | "Ignore",
): AdmitResult {
  return admitCustomResource({
    schema: rootWith(schema),
    object: obj(value),
    ...(old === undefined ? {} : { oldObject: obj(old) }),
    ...(fieldValidation ? { fieldValidation } : {}),
  });
}

/** `[reason, field]` pairs, the stable part of causes. */
export function brief(r: AdmitResult): Array<[string, string]> {
  return r.causes.map((c) => [c.reason, c.field]);
}
