// The dev cluster's pure CRD schema engine: admission of custom resources (prune → default → validate → CEL),
// CRD checks, the OpenAPI v3 document kubectl needs, and server-side Table rows for printer columns.
//
// CEL (`x-kubernetes-validations`) runs on @marcbachmann/cel-js 8 with Kubernetes' type mapping for `self`
// (integer → int, number → double, format duration/date/date-time/byte → duration/timestamp/bytes, null fields
// absent, escaped property names), `oldSelf` transition rules (only with a correlated old value; list-type=map
// items correlate by key; `optionalOldSelf`), message/messageExpression/fieldPath/reason, runtime errors as
// causes, and compile-time checks (syntax, overloads, fields read from `self` against the schema).
// Built in: has, size, all/exists/exists_one/map/filter, in, matches, startsWith/endsWith/contains,
// lower/upperAscii, trim, split, join, substring, indexOf, duration/timestamp. Added (cel-library.ts): charAt,
// replace, list isSorted/sum/min/max/indexOf/lastIndexOf, find/findAll, url/isURL and getters, quantity
// (approximate above 2^53), isQuantity.
// Gaps: namespaced functions (sets.*, format.*, math.*, strings.quote) cannot be registered in cel-js; no
// ip()/cidr(), authorizer, semver; no cost estimation (a rule a real apiserver rejects as too expensive is
// accepted here); set/map-list equality is order-sensitive (Kubernetes ignores order) and `+` on them is plain
// concatenation; no validation ratcheting (1.30+): an unchanged invalid field still blocks an update.
export type { AdmitResult, FieldCause, FieldValidation } from "./types.js";
export { admitCustomResource, defaultCustomResource, strictDecodingMessage } from "./admit.js";
export type { AdmitOptions } from "./admit.js";
export { ROOT_FIELD, UNKNOWN_FIELD_REASON } from "./causes.js";
export { validateCrd } from "./crd-check.js";
export { openApiV3ForGroupVersion, definitionName, openApiDocumentHash } from "./openapi.js";
export { printerColumnsTable, buildPrinterTable, DEFAULT_PRINTER_COLUMNS } from "./printer-columns.js";
export type { IncludeObject, PrinterTableOptions } from "./printer-columns.js";
export { humanDuration } from "./human-duration.js";
