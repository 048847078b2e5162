// The one place the server imports the CRD schema engine (operator/devcluster/schema/) from.
export {
  admitCustomResource,
  validateCrd,
  openApiV3ForGroupVersion,
  printerColumnsTable,
  UNKNOWN_FIELD_REASON,
  type FieldCause,
  type AdmitResult,
} from "./schema/index.js";
