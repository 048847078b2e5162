// Decodes the protobuf request bodies kubectl's typed clients send for a few built-in kinds
// (`kubectl create configmap|secret|namespace|serviceaccount|token`, `kubectl auth can-i|whoami`): the `k8s\0` envelope
// (runtime.Unknown) and the messages' field numbers from the Kubernetes API's generated.proto files
// (https://kubernetes.io/docs/reference/using-api/api-concepts/#protobuf-encoding). Responses stay JSON,
// which those clients also accept. Other kinds answer 415, and the client can send JSON instead.
import { unsupportedMediaType } from "./status.js";
import type { Obj } from "./util.js";

type FieldType = "string" | "bytes" | "int" | "bool" | "time" | "stringMap" | "bytesMap" | { msg: string };
interface FieldDef {
  name: string;
  type: FieldType;
  repeated?: boolean;
  /** A pointer field in Go: a zero value was sent on purpose and is kept (e.g. replicas: 0). */
  keepZero?: boolean;
}
type MessageDef = Record<number, FieldDef>;

const MESSAGES: Record<string, MessageDef> = {
  Unknown: {
    1: { name: "typeMeta", type: { msg: "TypeMeta" } },
    2: { name: "raw", type: "bytes" },
    3: { name: "contentEncoding", type: "string" },
    4: { name: "contentType", type: "string" },
  },
  TypeMeta: { 1: { name: "apiVersion", type: "string" }, 2: { name: "kind", type: "string" } },
  Time: { 1: { name: "seconds", type: "int" }, 2: { name: "nanos", type: "int" } },
  ObjectMeta: {
    1: { name: "name", type: "string" },
    2: { name: "generateName", type: "string" },
    3: { name: "namespace", type: "string" },
    5: { name: "uid", type: "string" },
    6: { name: "resourceVersion", type: "string" },
    7: { name: "generation", type: "int" },
    10: { name: "deletionGracePeriodSeconds", type: "int" },
    11: { name: "labels", type: "stringMap" },
    12: { name: "annotations", type: "stringMap" },
    13: { name: "ownerReferences", type: { msg: "OwnerReference" }, repeated: true },
    14: { name: "finalizers", type: "string", repeated: true },
  },
  OwnerReference: {
    1: { name: "kind", type: "string" },
    3: { name: "name", type: "string" },
    4: { name: "uid", type: "string" },
    5: { name: "apiVersion", type: "string" },
    6: { name: "controller", type: "bool" },
    7: { name: "blockOwnerDeletion", type: "bool" },
  },
  ConfigMap: {
    1: { name: "metadata", type: { msg: "ObjectMeta" } },
    2: { name: "data", type: "stringMap" },
    3: { name: "binaryData", type: "bytesMap" },
    4: { name: "immutable", type: "bool" },
  },
  Secret: {
    1: { name: "metadata", type: { msg: "ObjectMeta" } },
    2: { name: "data", type: "bytesMap" },
    3: { name: "type", type: "string" },
    4: { name: "stringData", type: "stringMap" },
    5: { name: "immutable", type: "bool" },
  },
  Namespace: {
    1: { name: "metadata", type: { msg: "ObjectMeta" } },
    2: { name: "spec", type: { msg: "NamespaceSpec" } },
  },
  NamespaceSpec: { 1: { name: "finalizers", type: "string", repeated: true } },
  ServiceAccount: {
    1: { name: "metadata", type: { msg: "ObjectMeta" } },
    2: { name: "secrets", type: { msg: "ObjectReference" }, repeated: true },
    3: { name: "imagePullSecrets", type: { msg: "LocalObjectReference" }, repeated: true },
    4: { name: "automountServiceAccountToken", type: "bool" },
  },
  ObjectReference: {
    1: { name: "kind", type: "string" },
    2: { name: "namespace", type: "string" },
    3: { name: "name", type: "string" },
    4: { name: "uid", type: "string" },
    5: { name: "apiVersion", type: "string" },
    6: { name: "resourceVersion", type: "string" },
    7: { name: "fieldPath", type: "string" },
  },
  LocalObjectReference: { 1: { name: "name", type: "string" } },
  TokenRequest: {
    1: { name: "metadata", type: { msg: "ObjectMeta" } },
    2: { name: "spec", type: { msg: "TokenRequestSpec" } },
  },
  TokenRequestSpec: {
    1: { name: "audiences", type: "string", repeated: true },
    3: { name: "boundObjectRef", type: { msg: "BoundObjectReference" } },
    4: { name: "expirationSeconds", type: "int" },
  },
  BoundObjectReference: {
    1: { name: "kind", type: "string" },
    2: { name: "apiVersion", type: "string" },
    3: { name: "name", type: "string" },
    4: { name: "uid", type: "string" },
  },
  SelfSubjectReview: { 1: { name: "metadata", type: { msg: "ObjectMeta" } } },
  SelfSubjectAccessReview: {
    1: { name: "metadata", type: { msg: "ObjectMeta" } },
    2: { name: "spec", type: { msg: "SelfSubjectAccessReviewSpec" } },
  },
  SelfSubjectAccessReviewSpec: {
    1: { name: "resourceAttributes", type: { msg: "ResourceAttributes" } },
    2: { name: "nonResourceAttributes", type: { msg: "NonResourceAttributes" } },
  },
  ResourceAttributes: {
    1: { name: "namespace", type: "string" },
    2: { name: "verb", type: "string" },
    3: { name: "group", type: "string" },
    4: { name: "version", type: "string" },
    5: { name: "resource", type: "string" },
    6: { name: "subresource", type: "string" },
    7: { name: "name", type: "string" },
  },
  NonResourceAttributes: { 1: { name: "path", type: "string" }, 2: { name: "verb", type: "string" } },
  Deployment: {
    1: { name: "metadata", type: { msg: "ObjectMeta" } },
    2: { name: "spec", type: { msg: "DeploymentSpec" } },
  },
  DeploymentSpec: {
    1: { name: "replicas", type: "int", keepZero: true },
    2: { name: "selector", type: { msg: "LabelSelector" } },
    3: { name: "template", type: { msg: "PodTemplateSpec" } },
  },
  LabelSelector: {
    1: { name: "matchLabels", type: "stringMap" },
    2: { name: "matchExpressions", type: { msg: "LabelSelectorRequirement" }, repeated: true },
  },
  LabelSelectorRequirement: {
    1: { name: "key", type: "string" },
    2: { name: "operator", type: "string" },
    3: { name: "values", type: "string", repeated: true },
  },
  PodTemplateSpec: {
    1: { name: "metadata", type: { msg: "ObjectMeta" } },
    2: { name: "spec", type: { msg: "PodSpec" } },
  },
  PodSpec: {
    2: { name: "containers", type: { msg: "Container" }, repeated: true },
    3: { name: "restartPolicy", type: "string" },
    8: { name: "serviceAccountName", type: "string" },
    10: { name: "nodeName", type: "string" },
  },
  Container: {
    1: { name: "name", type: "string" },
    2: { name: "image", type: "string" },
    3: { name: "command", type: "string", repeated: true },
    4: { name: "args", type: "string", repeated: true },
    5: { name: "workingDir", type: "string" },
    6: { name: "ports", type: { msg: "ContainerPort" }, repeated: true },
    7: { name: "env", type: { msg: "EnvVar" }, repeated: true },
  },
  ContainerPort: {
    1: { name: "name", type: "string" },
    2: { name: "hostPort", type: "int" },
    3: { name: "containerPort", type: "int" },
    4: { name: "protocol", type: "string" },
  },
  EnvVar: { 1: { name: "name", type: "string" }, 2: { name: "value", type: "string" } },
  Service: {
    1: { name: "metadata", type: { msg: "ObjectMeta" } },
    2: { name: "spec", type: { msg: "ServiceSpec" } },
  },
  ServiceSpec: {
    1: { name: "ports", type: { msg: "ServicePort" }, repeated: true },
    2: { name: "selector", type: "stringMap" },
    3: { name: "clusterIP", type: "string" },
    4: { name: "type", type: "string" },
  },
  ServicePort: {
    1: { name: "name", type: "string" },
    2: { name: "protocol", type: "string" },
    3: { name: "port", type: "int" },
    4: { name: "targetPort", type: { msg: "IntOrString" } },
    5: { name: "nodePort", type: "int" },
  },
  IntOrString: {
    1: { name: "type", type: "int" },
    2: { name: "intVal", type: "int" },
    3: { name: "strVal", type: "string" },
  },
  MapEntry: { 1: { name: "key", type: "string" }, 2: { name: "value", type: "bytes" } },
};

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error("truncated varint");
      const b = this.buf[this.pos++] ?? 0;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  }
  bytes(): Buffer {
    const len = Number(this.varint());
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

function decodeMessage(buf: Buffer, name: string): Obj {
  const def = MESSAGES[name] ?? {};
  const r = new Reader(buf);
  const out: Obj = {};
  while (!r.done) {
    const tag = Number(r.varint());
    const num = tag >>> 3;
    const wire = tag & 7;
    const f = def[num];
    if (!f) {
      r.skip(wire);
      continue;
    }
    let value: unknown;
    const t = f.type;
    if (t === "int") value = Number(BigInt.asIntN(64, r.varint()));
    else if (t === "bool") value = r.varint() !== 0n;
    else if (t === "string") value = r.bytes().toString("utf8");
    else if (t === "bytes") value = Buffer.from(r.bytes());
    else if (t === "stringMap" || t === "bytesMap") {
      const e = decodeMessage(r.bytes(), "MapEntry");
      const map = (out[f.name] ??= {}) as Obj;
      const v = e.value instanceof Buffer ? e.value : Buffer.alloc(0);
      map[String(e.key ?? "")] = t === "stringMap" ? v.toString("utf8") : v.toString("base64");
      continue;
    } else if (t === "time") value = decodeMessage(r.bytes(), "Time");
    else value = decodeMessage(r.bytes(), t.msg);
    // gogo-protobuf writes non-pointer fields even when empty; JSON leaves them out (omitempty)
    if (!f.repeated && !f.keepZero && (value === "" || value === 0 || value === false)) continue;
    if (f.repeated) ((out[f.name] ??= []) as unknown[]).push(value);
    else out[f.name] = value;
  }
  return out;
}

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** Decodes a `application/vnd.kubernetes.protobuf` body into the JSON object it encodes. */
export function decodeProtobufBody(body: Buffer): Obj {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC))
    throw unsupportedMediaType("protobuf body without the k8s envelope");
  const env = decodeMessage(body.subarray(4), "Unknown");
  const tm = (env.typeMeta ?? {}) as Obj;
  const kind = String(tm.kind ?? "");
  if (!MESSAGES[kind] || kind === "Unknown" || kind === "MapEntry") {
    throw unsupportedMediaType(
      `the body of the request was in an unknown format - the dev cluster decodes protobuf only for ConfigMap, Secret, Namespace, ServiceAccount, Deployment, Service, TokenRequest and the self reviews; send ${kind || "this kind"} as application/json`,
    );
  }
  const raw = env.raw instanceof Buffer ? env.raw : Buffer.alloc(0);
  const obj = fixIntOrString(decodeMessage(raw, kind));
  return { apiVersion: tm.apiVersion, kind, ...obj };
}

/** IntOrString messages become the JSON int or string they stand for. */
function fixIntOrString(v: unknown): Obj {
  const walk = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(walk);
    if (x === null || typeof x !== "object" || x instanceof Buffer) return x;
    const o = x as Obj;
    const keys = Object.keys(o);
    if (
      keys.length > 0 &&
      keys.every((k) => k === "type" || k === "intVal" || k === "strVal") &&
      ("intVal" in o || "strVal" in o || "type" in o)
    )
      return o.type === 1 ? (o.strVal ?? "") : (o.intVal ?? 0);
    return Object.fromEntries(Object.entries(o).map(([k, y]) => [k, walk(y)]));
  };
  return walk(v) as Obj;
}
