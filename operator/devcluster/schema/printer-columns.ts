// Server-side `meta.k8s.io/v1` Tables for custom resources (apiextensions' table convertor): a leading Name
// column, then the version's additionalPrinterColumns (or a single Age column when it has none), cells read with
// the column's JSONPath (first match only; no match gives null, which kubectl prints as `<none>`) and typed by
// the column's type; dates become ages relative to an injectable clock.
import { findJsonPath } from "./jsonpath.js";
import { humanDuration } from "./human-duration.js";
import { isPlainObject } from "./types.js";

export type IncludeObject = "None" | "Metadata" | "Object";

export interface PrinterTableOptions {
  columns: Record<string, unknown>[];
  objects: Record<string, unknown>[];
  includeObject: IncludeObject;
  /** The clock for date columns; defaults to the wall clock. */
  now?: () => Date;
}

const NAME_DESCRIPTION =
  "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

const AGE_DESCRIPTION =
  "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/** The printer columns a CRD version gets when it defines none. */
export const DEFAULT_PRINTER_COLUMNS: Record<string, unknown>[] = [
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp", description: AGE_DESCRIPTION },
];

interface Column {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
  jsonPath: string;
}

function normalise(c: Record<string, unknown>): Column {
  return {
    name: typeof c.name === "string" ? c.name : "",
    type: typeof c.type === "string" ? c.type : "string",
    format: typeof c.format === "string" ? c.format : "",
    description: typeof c.description === "string" ? c.description : "",
    priority: typeof c.priority === "number" ? c.priority : 0,
    jsonPath: typeof c.jsonPath === "string" ? c.jsonPath : "",
  };
}

/** Text form of a JSONPath result, as client-go's jsonpath printer writes it. */
function printed(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}

export function cellFor(type: string, value: unknown, now: Date): unknown {
  if (value === null || value === undefined) return null;
  switch (type) {
    case "string":
      return printed(value);
    case "integer":
      return typeof value === "number" ? Math.trunc(value) : null;
    case "number":
      return typeof value === "number" ? value : null;
    case "boolean":
      return typeof value === "boolean" ? value : null;
    case "date": {
      if (typeof value !== "string") return null;
      const t = Date.parse(value);
      if (Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}T/.test(value)) return "<invalid>";
      return humanDuration(now.getTime() - t);
    }
    default:
      return null;
  }
}

function rowObject(
  obj: Record<string, unknown>,
  include: IncludeObject,
): Record<string, unknown> | undefined {
  if (include === "None") return undefined;
  if (include === "Object") return obj;
  return {
    kind: "PartialObjectMetadata",
    apiVersion: "meta.k8s.io/v1",
    metadata: isPlainObject(obj.metadata) ? obj.metadata : {},
  };
}

/** Builds the Table with an explicit clock. `metadata` is left for the server (resourceVersion, continue). */
export function buildPrinterTable(opts: PrinterTableOptions): Record<string, unknown> {
  const now = (opts.now ?? (() => new Date()))();
  const columns = (opts.columns.length > 0 ? opts.columns : DEFAULT_PRINTER_COLUMNS).map(normalise);
  const columnDefinitions = [
    { name: "Name", type: "string", format: "name", description: NAME_DESCRIPTION, priority: 0 },
    ...columns.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format,
      description: c.description,
      priority: c.priority,
    })),
  ];
  const rows = opts.objects.map((obj) => {
    const meta = isPlainObject(obj.metadata) ? obj.metadata : {};
    const cells: unknown[] = [typeof meta.name === "string" ? meta.name : ""];
    for (const c of columns) cells.push(cellFor(c.type, findJsonPath(obj, c.jsonPath)[0], now));
    const object = rowObject(obj, opts.includeObject);
    return object === undefined ? { cells } : { cells, object };
  });
  return { kind: "Table", apiVersion: "meta.k8s.io/v1", metadata: {}, columnDefinitions, rows };
}

/** Server-side Table rows for additionalPrinterColumns (`kubectl get`), dated against the wall clock. */
export function printerColumnsTable(
  columns: Record<string, unknown>[],
  objects: Record<string, unknown>[],
  includeObject: IncludeObject,
): Record<string, unknown> {
  return buildPrinterTable({ columns, objects, includeObject });
}
