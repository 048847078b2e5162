/**
 * The operator's Kubernetes client: a KubeConfig (from a file, or in-cluster), raw JSON requests
 * authenticated by client-node, and the few typed helpers the operator needs. Objects stay plain
 * JSON end to end (what `Watch` delivers), never client-node's generated model classes, whose
 * deserialisation turns timestamps into `Date` and would make listed and watched objects differ.
 *
 * Traps in client-node 1.3.0 this file works around or documents:
 * - `Watch.watch` resolves (and hands back its AbortController) only after the response headers
 *   arrive; errors before that come through `done`, not as a rejection. node-fetch's 30 s
 *   `timeout` it sets covers only the wait for headers, not the stream. Every close (server
 *   timeout, reset, our own abort) calls `done`, usually with `null`; we ignore `done` after stop.
 * - Unparseable lines in a watch stream are dropped silently; an ERROR event (410 Expired) arrives
 *   as an ordinary event whose object is a `Status`.
 * - `applyToHTTPSOptions` builds a new agent per call, so each request would be its own TLS
 *   connection (about 35 ms a request against the dev cluster on a busy machine, 5 ms over a kept
 *   connection: the difference between 10 and 60 policy reconciles a second). Requests therefore
 *   share one keep-alive agent per TLS identity (never for proxy agents). The trap that comes with
 *   it (DESIGN.md "Known traps": a kept socket the server closed meanwhile) is handled: idle
 *   sockets are dropped after 4 s, below common server idle timeouts, and a request that fails
 *   with ECONNRESET/EPIPE on a reused socket is retried once on a fresh one when it is idempotent
 *   (GET, PUT — which carries a resourceVersion —, DELETE).
 */
import http from "node:http";
import https from "node:https";
import { KubeConfig, Watch } from "@kubernetes/client-node";
import type { Lease, LeaseClient } from "./leader-election.js";
import type { KubeObject, KubeStatus, ListPage, WatchEventType } from "./types.js";
import { KubeApiError, isNotFound } from "./types.js";
import type { ListWatchTransport, WatchHandle } from "./watch-source.js";

/**
 * Loads a KubeConfig: from `kubeconfigPath` when given (the `--kubeconfig` flag), else in-cluster
 * (the pod's ServiceAccount token and CA), as the contract says for `bulwark operator`.
 */
export function loadKubeConfig(
  opts: { kubeconfigPath?: string; context?: string; env?: NodeJS.ProcessEnv } = {},
): KubeConfig {
  const kc = new KubeConfig();
  if (opts.kubeconfigPath) {
    try {
      kc.loadFromFile(opts.kubeconfigPath);
    } catch (err) {
      throw new Error(`kubeconfig ${opts.kubeconfigPath}: ${(err as Error).message}`, { cause: err });
    }
    if (opts.context) kc.setCurrentContext(opts.context);
  } else {
    // client-node builds "https://undefined:undefined" outside a pod; say what is wrong instead.
    const env = opts.env ?? process.env;
    if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) {
      throw new Error(
        "not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset): pass --kubeconfig FILE",
      );
    }
    kc.loadFromCluster();
  }
  if (!kc.getCurrentCluster()) {
    throw new Error(`kubeconfig ${opts.kubeconfigPath ?? "(in-cluster)"}: no current cluster`);
  }
  return kc;
}

/** Where a resource lives on the API server. */
export interface ResourceRef {
  /** "" or undefined for the core group (`/api/v1`). */
  group?: string;
  version: string;
  plural: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** `/api/v1/namespaces/ns/pods/name/status`, `/apis/group/version/plural`, … */
export function resourcePath(ref: ResourceRef): string {
  const base = ref.group ? `/apis/${ref.group}/${ref.version}` : `/api/${ref.version}`;
  const ns = ref.namespace ? `/namespaces/${encodeURIComponent(ref.namespace)}` : "";
  const name = ref.name ? `/${encodeURIComponent(ref.name)}` : "";
  const sub = ref.name && ref.subresource ? `/${ref.subresource}` : "";
  return `${base}${ns}/${ref.plural}${name}${sub}`;
}

export const PODS: ResourceRef = { version: "v1", plural: "pods" };
export const LEASES: ResourceRef = { group: "coordination.k8s.io", version: "v1", plural: "leases" };
export const EVENTS: ResourceRef = { version: "v1", plural: "events" };

export type PatchType = "merge" | "json" | "strategic";
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
};

export interface KubeRequest {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  /** Defaults to the client's request timeout. */
  timeoutMs?: number;
}

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continueToken?: string;
}

export interface KubeClientOptions {
  /** Per-request timeout (not watches). Defaults to 30 000 ms, client-node's own fetch timeout. */
  requestTimeoutMs?: number;
  /** Reuse connections between requests (see the header). Defaults to true. */
  keepAlive?: boolean;
}

/** Idle kept sockets are closed after this long (below Node's 5 s and Go's 90 s server idle timeouts). */
const KEEPALIVE_IDLE_MS = 4_000;
const RETRY_ON_REUSED = new Set(["ECONNRESET", "EPIPE"]);
const IDEMPOTENT = new Set(["GET", "PUT", "DELETE"]);

/** A small typed client over one KubeConfig. */
export class KubeClient {
  private readonly requestTimeoutMs: number;
  private readonly keepAlive: boolean;
  /** Keep-alive agents by TLS identity (CA, client cert/key, verification, server name). */
  private readonly agents = new Map<string, https.Agent>();

  constructor(
    readonly kc: KubeConfig,
    opts: KubeClientOptions = {},
  ) {
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.keepAlive = opts.keepAlive ?? true;
  }

  /** Closes kept connections (they are unref'd and idle out anyway; for tidy shutdowns). */
  close(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }

  /** The shared keep-alive agent for the TLS identity in `opts`, replacing client-node's per-call one. */
  private sharedAgent(opts: https.RequestOptions): https.Agent | undefined {
    // Only a plain https.Agent: a proxy agent (hpagent, socks) keeps client-node's own.
    if (!(opts.agent instanceof https.Agent) || opts.agent.constructor !== https.Agent) return undefined;
    const id = JSON.stringify(
      [opts.ca, opts.cert, opts.key, opts.pfx, opts.rejectUnauthorized, opts.servername].map((v) =>
        Buffer.isBuffer(v) ? v.toString("base64") : v,
      ),
    );
    let agent = this.agents.get(id);
    if (!agent) {
      agent = new https.Agent({
        keepAlive: true,
        timeout: KEEPALIVE_IDLE_MS,
        maxSockets: 64,
        maxFreeSockets: 16,
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        pfx: opts.pfx,
        passphrase: opts.passphrase,
        ...(opts.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: opts.rejectUnauthorized }),
        ...(opts.servername ? { servername: opts.servername } : {}),
      });
      if (this.agents.size >= 8) this.agents.clear(); // rotated identities: old agents idle out
      this.agents.set(id, agent);
    }
    return agent;
  }

  /** One JSON request. Rejects with `KubeApiError` (statusCode, reason) for any status ≥ 400. */
  async request<T = unknown>(req: KubeRequest): Promise<T> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error("kube: no current cluster in kubeconfig");
    const url = new URL(cluster.server.replace(/\/$/, "") + req.path);
    for (const [k, v] of Object.entries(req.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
    const opts: https.RequestOptions = {
      method: req.method,
      headers: {
        accept: "application/json",
        ...(payload
          ? { "content-type": req.contentType ?? "application/json", "content-length": payload.length }
          : {}),
      },
    };
    await this.kc.applyToHTTPSOptions(opts);
    const mod = url.protocol === "http:" ? http : https;
    if (this.keepAlive && mod === https) {
      const shared = this.sharedAgent(opts);
      if (shared) opts.agent = shared;
    }
    const timeoutMs = req.timeoutMs ?? this.requestTimeoutMs;
    const send = () =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const r = mod.request(url, opts, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
          );
          res.on("error", reject);
        });
        r.setTimeout(timeoutMs, () =>
          r.destroy(new Error(`kube: ${req.method} ${req.path} timed out after ${timeoutMs} ms`)),
        );
        r.on("error", (err: NodeJS.ErrnoException) => {
          const wrapped = new Error(`kube: ${req.method} ${req.path}: ${err.message}`, { cause: err });
          reject(
            Object.assign(wrapped, { staleSocket: r.reusedSocket && RETRY_ON_REUSED.has(err.code ?? "") }),
          );
        });
        r.end(payload);
      });
    let sent: { status: number; text: string };
    try {
      sent = await send();
    } catch (err) {
      // A kept socket the server had closed: the request never reached it, or is safe to repeat.
      if (!(err as { staleSocket?: boolean }).staleSocket || !IDEMPOTENT.has(req.method)) throw err;
      sent = await send();
    }
    const { status, text } = sent;
    let body: unknown = undefined;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    if (status >= 400 || status === 0) {
      const st = (typeof body === "object" && body !== null ? body : {}) as KubeStatus;
      throw new KubeApiError(
        status,
        `kube: ${req.method} ${req.path}: ${status} ${st.message ?? st.reason ?? text}`,
        {
          reason: st.reason,
          body,
        },
      );
    }
    return body as T;
  }

  /** The object, or undefined on 404. */
  async get<T extends KubeObject = KubeObject>(ref: ResourceRef): Promise<T | undefined> {
    try {
      return await this.request<T>({ method: "GET", path: resourcePath(ref) });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** One page of a collection (namespaced when `ref.namespace` is set, else across namespaces). */
  async list<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    opts: ListOptions = {},
  ): Promise<ListPage<T>> {
    const res = await this.request<{
      items?: T[];
      metadata?: { resourceVersion?: string; continue?: string };
    }>({
      method: "GET",
      path: resourcePath({ ...ref, name: undefined }),
      query: {
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        limit: opts.limit,
        continue: opts.continueToken,
      },
    });
    return {
      items: res.items ?? [],
      resourceVersion: res.metadata?.resourceVersion ?? "",
      continueToken: res.metadata?.continue || undefined,
    };
  }

  create<T extends KubeObject = KubeObject>(ref: ResourceRef, body: T): Promise<T> {
    return this.request<T>({ method: "POST", path: resourcePath({ ...ref, name: undefined }), body });
  }

  /** PUT; the body's `metadata.resourceVersion` makes it conditional (409 when stale). */
  replace<T extends KubeObject = KubeObject>(ref: ResourceRef, body: T): Promise<T> {
    return this.request<T>({ method: "PUT", path: resourcePath(ref), body });
  }

  patch<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    patch: unknown,
    type: PatchType = "merge",
  ): Promise<T> {
    return this.request<T>({
      method: "PATCH",
      path: resourcePath(ref),
      body: patch,
      contentType: PATCH_CONTENT_TYPE[type],
    });
  }

  /**
   * Patches the `/status` subresource. With a merge patch, put `metadata.resourceVersion` in the
   * patch to make it conditional (409 on a stale read; re-read and retry).
   */
  patchStatus<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    patch: unknown,
    type: PatchType = "merge",
  ): Promise<T> {
    return this.patch<T>({ ...ref, subresource: "status" }, patch, type);
  }

  /** Creates a core/v1 Event about `involved`. Deduplication is the caller's (recorder's) job. */
  createEvent(
    involved: KubeObject,
    e: { type: "Normal" | "Warning"; reason: string; message: string; component: string; nowMs?: number },
  ): Promise<KubeObject> {
    const ns = involved.metadata?.namespace ?? "default";
    const now = new Date(e.nowMs ?? Date.now()).toISOString();
    return this.create(
      { ...EVENTS, namespace: ns },
      {
        apiVersion: "v1",
        kind: "Event",
        metadata: { generateName: `${involved.metadata?.name ?? "object"}.`, namespace: ns },
        involvedObject: {
          apiVersion: involved.apiVersion,
          kind: involved.kind,
          name: involved.metadata?.name,
          namespace: involved.metadata?.namespace,
          uid: involved.metadata?.uid,
          resourceVersion: involved.metadata?.resourceVersion,
        },
        type: e.type,
        reason: e.reason,
        message: e.message.slice(0, 1024),
        source: { component: e.component },
        reportingComponent: e.component,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    );
  }

  /** A list+watch transport for `ref`'s collection, on client-node's `Watch`. */
  listWatchTransport<T extends KubeObject = KubeObject>(
    ref: ResourceRef,
    opts: { labelSelector?: string; fieldSelector?: string } = {},
  ): ListWatchTransport<T> {
    const path = resourcePath({ ...ref, name: undefined });
    const watch = new Watch(this.kc);
    return {
      list: (req) => this.list<T>(ref, { ...opts, limit: req.limit, continueToken: req.continueToken }),
      watch: async (req, onEvent, onDone): Promise<WatchHandle> => {
        let stopped = false;
        const controller = await watch.watch(
          path,
          {
            resourceVersion: req.resourceVersion,
            allowWatchBookmarks: req.allowWatchBookmarks,
            timeoutSeconds: req.timeoutSeconds,
            labelSelector: opts.labelSelector,
            fieldSelector: opts.fieldSelector,
          },
          (type: string, obj: unknown) => {
            if (!stopped) onEvent(type as WatchEventType, obj);
          },
          (err: unknown) => {
            if (!stopped) {
              stopped = true;
              onDone(err ?? null);
            }
          },
        );
        return {
          stop: () => {
            stopped = true;
            controller.abort();
          },
        };
      },
    };
  }

  /** The Lease calls leader election needs. */
  leaseClient(): LeaseClient {
    return {
      get: async (namespace, name) =>
        (await this.get<Lease & KubeObject>({ ...LEASES, namespace, name })) as Lease | undefined,
      create: async (lease) =>
        (await this.create(
          { ...LEASES, namespace: lease.metadata.namespace },
          lease as Lease & KubeObject,
        )) as Lease,
      replace: async (lease) =>
        (await this.replace(
          { ...LEASES, namespace: lease.metadata.namespace, name: lease.metadata.name },
          lease as Lease & KubeObject,
        )) as Lease,
    };
  }
}
