/** A Kubernetes `StatusCause`. `field` is a field path such as `spec.upstreams[0].retry.backoff.max`. */
export interface FieldCause {
  reason: string;
  message: string;
  field: string;
}

/** What admission of one custom resource produced: the pruned, defaulted object and what was wrong with it. */
export interface AdmitResult {
  object: Record<string, unknown>;
  causes: FieldCause[];
  warnings: string[];
}

/** One node of a CRD's `openAPIV3Schema` (apiextensions `JSONSchemaProps`), kept as plain JSON. */
export type SchemaNode = Record<string, unknown>;

export type FieldValidation = "Strict" | "Warn" | "Ignore";

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function deepClone<T>(v: T): T {
  return structuredClone(v);
}
