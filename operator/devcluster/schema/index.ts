// The dev cluster's pure CRD schema engine: admission of custom resources (prune, default, validate, CEL),
// CRD checks, the OpenAPI v3 document kubectl needs, and server-side Table rows for printer columns.
export type { AdmitResult, FieldCause, FieldValidation } from "./types.js";
export { admitCustomResource, defaultCustomResource, strictDecodingMessage } from "./admit.js";
export type { AdmitOptions } from "./admit.js";
export { UNKNOWN_FIELD_REASON } from "./causes.js";
export { validateCrd } from "./crd-check.js";
export { openApiV3ForGroupVersion, definitionName, openApiDocumentHash } from "./openapi.js";
export { printerColumnsTable, buildPrinterTable, DEFAULT_PRINTER_COLUMNS } from "./printer-columns.js";
export type { IncludeObject, PrinterTableOptions } from "./printer-columns.js";
export { humanDuration } from "./human-duration.js";
