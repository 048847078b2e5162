// The dev cluster's pure CRD schema engine: admission of custom resources (prune, default, validate, CEL),
// CRD checks, the OpenAPI v3 document kubectl needs, and server-side Table rows for printer columns.
export type { AdmitResult, FieldCause, FieldValidation } from "./types.js";
export { admitCustomResource, strictDecodingMessage } from "./admit.js";
export type { AdmitOptions } from "./admit.js";
export { UNKNOWN_FIELD_REASON } from "./causes.js";
export { validateCrd } from "./crd-check.js";
