// The sidecar injector, pure: a Pod in, a JSON Patch (RFC 6902) out. No I/O, no clock.
//
// What an injected pod gets (docs/install.md):
// - the agent as a native sidecar: an init container with `restartPolicy: Always`, first in the list so it
//   starts before the app and the other init containers; its env from the downward API (BULWARK_POD,
//   BULWARK_NAMESPACE), the operator URL, the token file and the operator's CA; resources and
//   securityContext from the chart's values;
// - HTTP_PROXY/http_proxy (and NO_PROXY for loopback) on every app container that does not set them, so
//   outbound calls go through the agent's outbound port;
// - a projected ServiceAccount token for the audience `bulwark` (the agent's identity to the operator) and
//   the operator's CA, written by the injector into an annotation and mounted through the downward API;
// - an emptyDir at /var/lib/bulwark as the agent's --state-dir: it outlives a restart of the agent's container
//   (not of the pod), so a restarted agent enforces its last-known-good config and breaker states before the
//   operator answers (issue 6);
// - the label `bulwark.dev/injected: "true"` (the PodMonitor selects on it).
// Idempotent: a pod that already has the agent gets no patch, so reinvocation changes nothing.
import type { InjectorConfig } from "./injector-config.js";

export const INJECT_KEY = "bulwark.dev/inject";
export const INJECTED_LABEL = "bulwark.dev/injected";
export const CA_ANNOTATION = "bulwark.dev/operator-ca";
export const APP_PORT_ANNOTATION = "bulwark.dev/app-port";
export const AGENT_CONTAINER = "bulwark-agent";
export const TOKEN_VOLUME = "bulwark-token";
export const CA_VOLUME = "bulwark-ca";
export const STATE_VOLUME = "bulwark-state";
export const STATE_DIR = "/var/lib/bulwark";
export const TOKEN_AUDIENCE = "bulwark";
export const TOKEN_DIR = "/var/run/secrets/bulwark/token";
export const CA_DIR = "/var/run/secrets/bulwark/ca";

export interface JsonPatchOp {
  op: "add" | "replace" | "remove" | "test";
  path: string;
  value?: unknown;
}

/** The part of a Pod the injector reads. */
export interface PodLike {
  metadata?: {
    name?: string;
    generateName?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: {
    containers?: ContainerLike[];
    initContainers?: ContainerLike[];
    volumes?: { name?: string }[];
  };
}
interface ContainerLike {
  name?: string;
  env?: { name?: string }[];
  ports?: { containerPort?: number; name?: string }[];
}

/**
 * Which webhook asked: `namespace` (the namespace opted in: inject unless the pod opts out) or `object`
 * (any other namespace: inject only when the pod opts in).
 */
export type InjectionScope = "namespace" | "object";

export type InjectionDecision =
  | { readonly inject: true }
  | {
      readonly inject: false;
      readonly reason: "opted-out" | "not-opted-in" | "already-injected" | "host-network";
    };

function optValue(pod: PodLike): string | undefined {
  return pod.metadata?.annotations?.[INJECT_KEY] ?? pod.metadata?.labels?.[INJECT_KEY];
}

export function decide(pod: PodLike, scope: InjectionScope): InjectionDecision {
  const all = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  if (all.some((c) => c.name === AGENT_CONTAINER)) return { inject: false, reason: "already-injected" };
  const v = optValue(pod)?.toLowerCase();
  if (v === "false") return { inject: false, reason: "opted-out" };
  if (scope === "object" && v !== "true") return { inject: false, reason: "not-opted-in" };
  if ((pod.spec as { hostNetwork?: boolean } | undefined)?.hostNetwork === true)
    return { inject: false, reason: "host-network" };
  return { inject: true };
}

/** `~` and `/` escaped for a JSON Pointer segment. */
function ptr(segment: string): string {
  return segment.replaceAll("~", "~0").replaceAll("/", "~1");
}

/** The app port: the annotation, else the first app container's first port, else the config's. */
export function appPortOf(pod: PodLike, config: InjectorConfig): number {
  const ann = Number(pod.metadata?.annotations?.[APP_PORT_ANNOTATION]);
  if (Number.isInteger(ann) && ann > 0 && ann < 65536) return ann;
  for (const c of pod.spec?.containers ?? [])
    for (const p of c.ports ?? []) if (typeof p.containerPort === "number") return p.containerPort;
  return config.appPort;
}

/** The agent container, as a native sidecar. */
export function agentContainer(
  pod: PodLike,
  config: InjectorConfig,
  withCa: boolean,
): Record<string, unknown> {
  const env: Record<string, unknown>[] = [
    { name: "BULWARK_POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: "BULWARK_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    ...(config.operatorUrl
      ? [
          { name: "BULWARK_OPERATOR", value: config.operatorUrl },
          { name: "BULWARK_TOKEN_FILE", value: `${TOKEN_DIR}/token` },
        ]
      : []),
    ...(withCa ? [{ name: "BULWARK_OPERATOR_CA", value: `${CA_DIR}/ca.crt` }] : []),
    { name: "BULWARK_ADMIN_PORT", value: String(config.adminPort) },
    { name: "BULWARK_OUTBOUND_PORT", value: String(config.outboundPort) },
    { name: "BULWARK_INBOUND_PORT", value: String(config.inboundPort) },
    { name: "BULWARK_APP_PORT", value: String(appPortOf(pod, config)) },
    { name: "BULWARK_STATE_DIR", value: STATE_DIR },
  ];
  const mounts: Record<string, unknown>[] = [
    { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true },
    { name: STATE_VOLUME, mountPath: STATE_DIR },
  ];
  if (withCa) mounts.push({ name: CA_VOLUME, mountPath: CA_DIR, readOnly: true });
  const probe = (path: string, failureThreshold: number, periodSeconds: number) => ({
    httpGet: { path, port: config.adminPort },
    periodSeconds,
    failureThreshold,
    timeoutSeconds: 2,
  });
  return {
    name: AGENT_CONTAINER,
    image: config.image,
    imagePullPolicy: config.imagePullPolicy,
    args: ["agent"],
    restartPolicy: "Always",
    env,
    ports: [
      { name: "bulwark-admin", containerPort: config.adminPort, protocol: "TCP" },
      { name: "bulwark-inbound", containerPort: config.inboundPort, protocol: "TCP" },
    ],
    // A native sidecar's startup probe holds the app containers back until the agent serves.
    startupProbe: probe("/healthz", 30, 1),
    livenessProbe: probe("/healthz", 3, 10),
    ...(config.resources ? { resources: config.resources } : {}),
    ...(config.securityContext ? { securityContext: config.securityContext } : {}),
    volumeMounts: mounts,
  };
}

/**
 * The patch that injects the agent, or [] when `decide` says no. `operatorCaPem` is the CA that signs the
 * operator's distribution certificate (undefined: the agent uses the system CAs).
 */
export function injectionPatch(
  pod: PodLike,
  config: InjectorConfig,
  scope: InjectionScope,
  operatorCaPem?: string,
): JsonPatchOp[] {
  if (!decide(pod, scope).inject) return [];
  const ops: JsonPatchOp[] = [];
  const withCa = operatorCaPem !== undefined && operatorCaPem !== "";

  // metadata: the injected label, the CA annotation
  if (!pod.metadata?.labels) ops.push({ op: "add", path: "/metadata/labels", value: {} });
  ops.push({ op: "add", path: `/metadata/labels/${ptr(INJECTED_LABEL)}`, value: "true" });
  if (withCa) {
    if (!pod.metadata?.annotations) ops.push({ op: "add", path: "/metadata/annotations", value: {} });
    ops.push({ op: "add", path: `/metadata/annotations/${ptr(CA_ANNOTATION)}`, value: operatorCaPem });
  }

  // the agent, first among the init containers
  const agent = agentContainer(pod, config, withCa);
  if (!pod.spec?.initContainers) ops.push({ op: "add", path: "/spec/initContainers", value: [agent] });
  else ops.push({ op: "add", path: "/spec/initContainers/0", value: agent });

  // the app containers' proxy environment
  const proxy = `http://127.0.0.1:${config.outboundPort}`;
  (pod.spec?.containers ?? []).forEach((c, i) => {
    const have = new Set((c.env ?? []).map((e) => e.name));
    const add = [
      { name: "HTTP_PROXY", value: proxy },
      { name: "http_proxy", value: proxy },
      { name: "NO_PROXY", value: "localhost,127.0.0.1,::1" },
      { name: "no_proxy", value: "localhost,127.0.0.1,::1" },
    ].filter((e) => !have.has(e.name));
    if (add.length === 0) return;
    if (!c.env) ops.push({ op: "add", path: `/spec/containers/${i}/env`, value: add });
    else for (const e of add) ops.push({ op: "add", path: `/spec/containers/${i}/env/-`, value: e });
  });

  // volumes: the projected token, the agent's state dir, the CA from the annotation
  const volumes: Record<string, unknown>[] = [
    {
      name: TOKEN_VOLUME,
      projected: {
        sources: [
          {
            serviceAccountToken: {
              audience: TOKEN_AUDIENCE,
              expirationSeconds: config.tokenExpirationSeconds,
              path: "token",
            },
          },
        ],
      },
    },
    // Small: a config and breaker states (a few KiB); the limit keeps a bug from filling the node's disk.
    { name: STATE_VOLUME, emptyDir: { sizeLimit: "16Mi" } },
  ];
  if (withCa)
    volumes.push({
      name: CA_VOLUME,
      downwardAPI: {
        items: [{ path: "ca.crt", fieldRef: { fieldPath: `metadata.annotations['${CA_ANNOTATION}']` } }],
      },
    });
  if (!pod.spec?.volumes) ops.push({ op: "add", path: "/spec/volumes", value: volumes });
  else for (const v of volumes) ops.push({ op: "add", path: "/spec/volumes/-", value: v });
  return ops;
}
