// Server-side `meta.k8s.io/v1 Table` output for kubectl get
// (https://kubernetes.io/docs/reference/using-api/api-concepts/#receiving-resources-as-tables):
// built-in kinds get their usual default columns, custom resources their additionalPrinterColumns.
import { printerColumnsTable } from "./crd-schema.js";
import type { ResourceType } from "./registry.js";
import { age, getPath, isObj, type Obj } from "./util.js";

export type IncludeObject = "None" | "Metadata" | "Object";

interface Col {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
  cell: (o: Obj) => unknown;
}

const nameCol: Col = {
  name: "Name",
  type: "string",
  format: "name",
  description: "Name must be unique within a namespace.",
  cell: (o) => getPath(o, "metadata.name"),
};
const ageCol: Col = {
  name: "Age",
  type: "string",
  description: "CreationTimestamp is a timestamp representing the server time when this object was created.",
  cell: (o) => age(getPath(o, "metadata.creationTimestamp")),
};

function count(v: unknown): number {
  return isObj(v) ? Object.keys(v).length : Array.isArray(v) ? v.length : 0;
}

function podReady(o: Obj): string {
  const spec = isObj(o.spec) ? o.spec : {};
  const total = Array.isArray(spec.containers) ? spec.containers.length : 0;
  const st = isObj(o.status) && Array.isArray(o.status.containerStatuses) ? o.status.containerStatuses : [];
  const ready = st.filter((c) => isObj(c) && c.ready === true).length;
  return `${ready}/${total}`;
}

function builtinColumns(t: ResourceType): Col[] {
  switch (`${t.group}/${t.resource}`) {
    case "/namespaces":
      return [
        nameCol,
        { name: "Status", type: "string", cell: (o) => getPath(o, "status.phase") ?? "Active" },
        ageCol,
      ];
    case "/configmaps":
      return [
        nameCol,
        { name: "Data", type: "integer", cell: (o) => count(o.data) + count(o.binaryData) },
        ageCol,
      ];
    case "/secrets":
      return [
        nameCol,
        { name: "Type", type: "string", cell: (o) => o.type ?? "Opaque" },
        { name: "Data", type: "integer", cell: (o) => count(o.data) },
        ageCol,
      ];
    case "/pods":
      return [
        nameCol,
        { name: "Ready", type: "string", cell: podReady },
        { name: "Status", type: "string", cell: (o) => getPath(o, "status.phase") ?? "Pending" },
        {
          name: "Restarts",
          type: "string",
          cell: (o) => {
            const st =
              isObj(o.status) && Array.isArray(o.status.containerStatuses) ? o.status.containerStatuses : [];
            return String(
              st.reduce(
                (n: number, c) => n + (isObj(c) && typeof c.restartCount === "number" ? c.restartCount : 0),
                0,
              ),
            );
          },
        },
        ageCol,
        { name: "IP", type: "string", priority: 1, cell: (o) => getPath(o, "status.podIP") ?? "<none>" },
        { name: "Node", type: "string", priority: 1, cell: (o) => getPath(o, "spec.nodeName") ?? "<none>" },
      ];
    case "/services":
      return [
        nameCol,
        { name: "Type", type: "string", cell: (o) => getPath(o, "spec.type") ?? "ClusterIP" },
        { name: "Cluster-IP", type: "string", cell: (o) => getPath(o, "spec.clusterIP") ?? "<none>" },
        {
          name: "Port(s)",
          type: "string",
          cell: (o) => {
            const ports = getPath(o, "spec.ports");
            if (!Array.isArray(ports) || ports.length === 0) return "<none>";
            return ports
              .map((p) => (isObj(p) ? `${String(p.port)}/${String(p.protocol ?? "TCP")}` : ""))
              .join(",");
          },
        },
        ageCol,
      ];
    case "coordination.k8s.io/leases":
      return [
        nameCol,
        { name: "Holder", type: "string", cell: (o) => getPath(o, "spec.holderIdentity") ?? "" },
        ageCol,
      ];
    case "apps/deployments":
      return [
        nameCol,
        {
          name: "Ready",
          type: "string",
          cell: (o) =>
            `${Number(getPath(o, "status.readyReplicas") ?? 0)}/${Number(getPath(o, "spec.replicas") ?? 1)}`,
        },
        {
          name: "Up-to-date",
          type: "integer",
          cell: (o) => Number(getPath(o, "status.updatedReplicas") ?? 0),
        },
        {
          name: "Available",
          type: "integer",
          cell: (o) => Number(getPath(o, "status.availableReplicas") ?? 0),
        },
        ageCol,
      ];
    case "apiextensions.k8s.io/customresourcedefinitions":
      return [
        nameCol,
        { name: "Created At", type: "date", cell: (o) => getPath(o, "metadata.creationTimestamp") },
      ];
    case "/events":
    case "events.k8s.io/events": {
      const last = (o: Obj) =>
        age(
          o.lastTimestamp ??
            o.deprecatedLastTimestamp ??
            o.eventTime ??
            getPath(o, "metadata.creationTimestamp"),
        );
      const involved = (o: Obj) =>
        isObj(o.involvedObject) ? o.involvedObject : isObj(o.regarding) ? o.regarding : {};
      return [
        { name: "Last Seen", type: "string", cell: last },
        { name: "Type", type: "string", cell: (o) => o.type ?? "" },
        { name: "Reason", type: "string", cell: (o) => o.reason ?? "" },
        {
          name: "Object",
          type: "string",
          cell: (o) => {
            const io = involved(o);
            return `${String(io.kind ?? "").toLowerCase()}/${String(io.name ?? "")}`;
          },
        },
        { name: "Message", type: "string", cell: (o) => o.message ?? o.note ?? "" },
        { ...nameCol, priority: 1 },
      ];
    }
    default:
      return [nameCol, ageCol];
  }
}

function rowObject(o: Obj, include: IncludeObject): Obj | undefined {
  if (include === "None") return undefined;
  if (include === "Object") return o;
  return { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata };
}

/** A Table for these objects; `noHeaders` leaves the column definitions out (later watch events). */
export function toTable(t: ResourceType, objects: Obj[], include: IncludeObject, noHeaders = false): Obj {
  let table: Obj;
  if (t.crd) {
    // no additionalPrinterColumns: the engine serves the default Age column
    table = printerColumnsTable(
      t.crd.printerColumns as unknown as Record<string, unknown>[],
      objects,
      include,
    );
  } else {
    const cols = builtinColumns(t);
    table = {
      kind: "Table",
      apiVersion: "meta.k8s.io/v1",
      metadata: {},
      columnDefinitions: cols.map((c) => ({
        name: c.name,
        type: c.type,
        format: c.format ?? "",
        description: c.description ?? "",
        priority: c.priority ?? 0,
      })),
      rows: objects.map((o) => {
        const row: Obj = { cells: cols.map((c) => c.cell(o) ?? null) };
        const ro = rowObject(o, include);
        if (ro) row.object = ro;
        return row;
      }),
    };
  }
  if (noHeaders) table.columnDefinitions = [];
  return table;
}

/** Whether the Accept header asks for a Table. */
export function wantsTable(accept: string | undefined): boolean {
  return !!accept && /as=Table/.test(accept) && /g=meta\.k8s\.io/.test(accept);
}
