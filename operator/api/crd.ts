// Pure: the zod schema → the CustomResourceDefinition object. zod's JSON Schema export does the walking; this
// file turns its output into a Kubernetes structural schema (type on every node, no additionalProperties:false,
// no propertyNames, int-or-string where a union of integer and string is allowed) and adds the CRD envelope:
// names, the status subresource and the printer columns.
import { z } from "zod";
import {
  API_VERSION,
  CATEGORIES,
  GROUP,
  KIND,
  PLURAL,
  ResiliencePolicySpec,
  SHORT_NAMES,
  SINGULAR,
  VERSION,
} from "./resilience-policy.js";
import { ResiliencePolicyStatus } from "./status.js";

/** A JSON Schema / OpenAPI v3 node, loosely typed. */
export type SchemaNode = { [key: string]: unknown };

/** Key order for every schema node, so the YAML reads top-down and is byte-stable. */
const KEY_ORDER = [
  "description",
  "type",
  "format",
  "enum",
  "default",
  "minimum",
  "maximum",
  "minLength",
  "maxLength",
  "pattern",
  "minItems",
  "maxItems",
  "maxProperties",
  "x-kubernetes-int-or-string",
  "anyOf",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
  "items",
  "required",
  "properties",
  "additionalProperties",
  "x-kubernetes-validations",
];

const isObject = (v: unknown): v is SchemaNode => typeof v === "object" && v !== null && !Array.isArray(v);

/** Renders a default value for a description: `25ms`, `[a, b]`, `{type: time, size: 10s}`. */
export function renderDefault(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(renderDefault).join(", ")}]`;
  if (isObject(v))
    return `{${Object.entries(v)
      .map(([k, x]) => `${k}: ${renderDefault(x)}`)
      .join(", ")}}`;
  if (v === "") return '""';
  return String(v);
}

/** Turns one node of zod's JSON Schema into a structural-schema node (recursively). */
export function structural(input: SchemaNode): SchemaNode {
  const node: SchemaNode = { ...input };
  delete node.$schema;
  delete node.propertyNames; // not in Kubernetes' OpenAPI subset; zod still checks keys
  if (node.additionalProperties === false) delete node.additionalProperties;

  // integer | string → int-or-string (the Kubernetes form: types only in the branches).
  if (Array.isArray(node.anyOf)) {
    const types = (node.anyOf as SchemaNode[]).map((b) => b.type).sort();
    if (types.length === 2 && types[0] === "integer" && types[1] === "string") {
      node["x-kubernetes-int-or-string"] = true;
      node.anyOf = [{ type: "integer" }, { type: "string" }];
    } else {
      throw new Error(`unsupported union in schema: ${JSON.stringify(node.anyOf)}`);
    }
  }
  if ("const" in node) {
    node.enum = [node.const];
    delete node.const;
  }
  // zod marks unbounded integers with the JS safe-integer range; Kubernetes integers are int64.
  if (node.maximum === Number.MAX_SAFE_INTEGER) delete node.maximum;
  if (node.minimum === Number.MIN_SAFE_INTEGER) delete node.minimum;

  if (isObject(node.properties)) {
    node.properties = Object.fromEntries(
      Object.entries(node.properties).map(([k, v]) => [k, structural(v as SchemaNode)]),
    );
  }
  if (isObject(node.items)) node.items = structural(node.items);
  if (isObject(node.additionalProperties)) node.additionalProperties = structural(node.additionalProperties);

  // State every default in the description (one source: the schema's own default).
  if ("default" in node && typeof node.description === "string" && !/\bDefault\b/.test(node.description)) {
    const d = node.default;
    if (!(isObject(d) && Object.keys(d).length === 0)) {
      node.description = `${node.description} Default: ${renderDefault(d)}.`;
    }
  }
  if (node.type === undefined && node["x-kubernetes-int-or-string"] !== true) {
    throw new Error(`schema node without a type: ${JSON.stringify(input).slice(0, 200)}`);
  }
  return orderKeys(node);
}

function orderKeys(node: SchemaNode): SchemaNode {
  const known = KEY_ORDER.filter((k) => k in node);
  const rest = Object.keys(node)
    .filter((k) => !KEY_ORDER.includes(k))
    .sort();
  if (rest.length > 0) throw new Error(`unexpected schema keys: ${rest.join(", ")}`);
  return Object.fromEntries(known.map((k) => [k, node[k]]));
}

/** The structural OpenAPI schema of a zod schema (its input side: defaults make fields optional). */
export function openApiSchema(schema: z.ZodType): SchemaNode {
  return structural(z.toJSONSchema(schema, { io: "input", unrepresentable: "throw" }) as SchemaNode);
}

/** The printer columns `kubectl get rp` shows. */
export const PRINTER_COLUMNS = [
  { name: "Mode", type: "string", jsonPath: ".spec.mode", description: "enforce, shadow or off" },
  {
    name: "Ready",
    type: "string",
    jsonPath: '.status.conditions[?(@.type=="Ready")].status',
    description: "Accepted and propagated to every selected pod",
  },
  { name: "Pods", type: "string", jsonPath: ".status.pods.summary", description: "Pods acked/selected" },
  {
    name: "Open Breakers",
    type: "integer",
    jsonPath: ".status.openBreakers",
    description: "Breakers open now, over pods and upstreams",
  },
  {
    name: "Shedding",
    type: "integer",
    jsonPath: ".status.sheddingLevel",
    description: "Tiers shed now",
    priority: 1,
  },
  { name: "Priority", type: "integer", jsonPath: ".spec.priority", description: "Precedence", priority: 1 },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
] as const;

/** The ResiliencePolicy CustomResourceDefinition, as a plain object ready to serialise. */
export function buildCrd(): SchemaNode {
  const spec = openApiSchema(ResiliencePolicySpec);
  const status = openApiSchema(ResiliencePolicyStatus);
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${PLURAL}.${GROUP}`,
      labels: { "app.kubernetes.io/part-of": "bulwark" },
    },
    spec: {
      group: GROUP,
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: [...SHORT_NAMES],
        categories: [...CATEGORIES],
      },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: PRINTER_COLUMNS.map((c) => ({ ...c })),
          schema: {
            openAPIV3Schema: {
              description:
                "ResiliencePolicy: outbound (timeouts, retries, breakers, bulkheads, rate limits, fallbacks) and " +
                "inbound (health checks, load shedding, bulkhead, rate limit) resilience rules for the pods its " +
                "selector picks, enforced by the bulwark agent in each pod.",
              type: "object",
              required: ["spec"],
              properties: {
                apiVersion: {
                  description: `APIVersion of this object: ${API_VERSION}.`,
                  type: "string",
                },
                kind: { description: `Kind of this object: ${KIND}.`, type: "string" },
                metadata: { type: "object" },
                spec,
                status,
              },
            },
          },
        },
      ],
    },
  };
}
