// The one place the server imports the CRD schema engine from, so swapping it is a one-line change.
export {
  admitCustomResource,
  validateCrd,
  openApiV3ForGroupVersion,
  printerColumnsTable,
  type FieldCause,
  type AdmitResult,
} from "./schema-shim.js";
