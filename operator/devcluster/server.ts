// The dev cluster: an HTTPS Kubernetes-API-compatible server on 127.0.0.1 that the real kubectl and
// @kubernetes/client-node accept. A development cluster like envtest or kwok, not a production apiserver.
// `startDevCluster` is the library entry point for tests; `bulwark dev-cluster` wraps it.
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { Api, type FieldValidation, type RequestInfo } from "./api.js";
import { Authenticator, type User } from "./auth.js";
import { registerBuiltins } from "./builtins.js";
import { RequestLog } from "./request-log.js";
import { Controllers, prepareCrd } from "./controllers.js";
import * as discovery from "./discovery.js";
import {
  faultStatus,
  newFaultState,
  parseFaultRequest,
  type FaultRequest,
  type FaultState,
} from "./faults.js";
import { kubeconfigYaml } from "./kubeconfig.js";
import { managerName } from "./managed-fields.js";
import { OpenApiCache } from "./openapi.js";
import { loadState, openWal, type Wal } from "./persistence.js";
import { Registry, gvString, type ResourceType } from "./registry.js";
import { parseFieldSelector, parseLabelSelector } from "./selectors.js";
import {
  ApiError,
  badRequest,
  forbidden,
  invalid,
  methodNotAllowed,
  notFoundPath,
  unauthorized,
} from "./status.js";
import { Store } from "./store.js";
import { toTable, wantsTable, type IncludeObject } from "./tables.js";
import { loadOrGenerateTls } from "./tls.js";
import { jsonPatch, mergePatch } from "./patch.js";
import { decodeProtobufBody } from "./protobuf.js";
import { applyScale, scalePaths, toScale } from "./scale.js";
import { tokenRequest, tokenReview } from "./tokens.js";
import { isObj, MAX_BODY_DEPTH, meta, nestedDeeperThan, type Obj } from "./util.js";
import { WatchHub } from "./watch.js";
import { Webhooks } from "./webhooks.js";
import { RbacAuthorizer, forbiddenFor, verbOf, type Decision, type ResourceAttributes } from "./rbac.js";

export interface DevClusterOptions {
  /** TCP port on 127.0.0.1; 0 picks a free one. */
  port?: number;
  /** Keep the store here across restarts (write-ahead log, fsync'd). Memory only when unset. */
  dataDir?: string;
  /** Admin bearer token; random when unset (kept in dataDir when there is one). */
  adminToken?: string;
  /** Watch events kept per resource type for resumption (default 10000). */
  historyLimit?: number;
  /** Seconds between watch bookmarks when a client asks for them (default 30). */
  bookmarkIntervalSeconds?: number;
  /** Initial faults (the CLI's --fault-* flags). */
  faults?: Partial<FaultState>;
  /** Also write a kubeconfig here once serving. */
  kubeconfigPath?: string;
  /** Called with every RBAC decision on a resource request (tests record what an identity used). */
  onAuthorize?: (user: User, attributes: ResourceAttributes, decision: Decision) => void;
}

export interface DevCluster {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly adminToken: string;
  readonly caPem: string;
  /** A kubeconfig (YAML) for this server with the admin token, or another token. */
  kubeconfigFor(token?: string, namespace?: string): string;
  /** Writes kubeconfigFor(token) to a file and returns its path. */
  writeKubeconfig(path: string, token?: string): string;
  /** Fault injection, as the admin endpoint offers it. */
  readonly faults: {
    dropWatches(): void;
    failNext(count: number, code?: 500 | 429 | 503): void;
    latency(ms: number): void;
    compact(): void;
    restart(): Promise<void>;
    reset(): void;
    /** While held, new watch requests wait (release with false). */
    holdWatches(hold: boolean): void;
  };
  /** Every request received and a bounded log of writes with their user (request-log.ts), for chaos tests. */
  readonly requests: RequestLog;
  /** Watches answered 410 Expired since start. */
  expiredWatches(): number;
  /** Current cluster-wide resourceVersion. */
  resourceVersion(): number;
  /** Open watch streams. */
  watchCount(): number;
  stop(): Promise<void>;
}

const PUBLIC_PATHS = new Set(["/version", "/healthz", "/livez", "/readyz"]);
const MAX_BODY = 8 * 1024 * 1024;

function readRawBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is 8388608"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function sendJson(
  res: ServerResponse,
  code: number,
  body: unknown,
  warnings: string[] = [],
  contentType = "application/json",
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const data = typeof body === "string" ? body : JSON.stringify(body);
  const headers: Record<string, string | string[]> = {
    "Content-Type": contentType,
    "Cache-Control": "no-cache, private",
    "Content-Length": String(Buffer.byteLength(data)),
  };
  if (warnings.length > 0) headers.Warning = [...new Set(warnings)].map((w) => `299 - ${JSON.stringify(w)}`);
  res.writeHead(code, headers);
  res.end(data);
}

/** Resolves once `cond` holds (checked every 20 ms). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
}

async function readBody(req: IncomingMessage): Promise<string> {
  return (await readRawBody(req)).toString("utf8");
}

/** Reads a JSON (or, for the few kinds kubectl sends that way, protobuf) request body. */
async function readObjectBody(req: IncomingMessage): Promise<unknown> {
  const raw = await readRawBody(req);
  if ((req.headers["content-type"] ?? "").startsWith("application/vnd.kubernetes.protobuf"))
    return decodeProtobufBody(raw);
  return parseJsonBody(raw.toString("utf8"));
}

function parseJsonBody(raw: string): unknown {
  if (raw.trim() === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw badRequest(`error decoding request body: ${(err as Error).message}`);
  }
  if (nestedDeeperThan(value, MAX_BODY_DEPTH))
    throw badRequest(`error decoding request body: exceeded max depth of ${MAX_BODY_DEPTH}`);
  return value;
}

interface Route {
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
}

export async function startDevCluster(opts: DevClusterOptions = {}): Promise<DevCluster> {
  const tls = loadOrGenerateTls(opts.dataDir);
  let adminToken = opts.adminToken;
  let signingKey: Buffer | undefined;
  if (opts.dataDir) {
    mkdirSync(opts.dataDir, { recursive: true });
    const tokenFile = join(opts.dataDir, "admin-token");
    const keyFile = join(opts.dataDir, "sa-signing-key");
    if (!adminToken && existsSync(tokenFile)) adminToken = readFileSync(tokenFile, "utf8").trim();
    if (existsSync(keyFile)) signingKey = Buffer.from(readFileSync(keyFile, "utf8").trim(), "hex");
    const auth0 = new Authenticator({
      ...(adminToken ? { adminToken } : {}),
      ...(signingKey ? { signingKey } : {}),
    });
    adminToken = auth0.adminToken;
    signingKey = auth0.signingKey;
    writeFileSync(tokenFile, adminToken, { mode: 0o600 });
    writeFileSync(keyFile, signingKey.toString("hex"), { mode: 0o600 });
  }
  const auth = new Authenticator({
    ...(adminToken ? { adminToken } : {}),
    ...(signingKey ? { signingKey } : {}),
  });

  const registry = new Registry();
  registerBuiltins(registry);
  const store = new Store(opts.historyLimit ?? 10_000);
  let wal: Wal | undefined;
  if (opts.dataDir) {
    const state = loadState(join(opts.dataDir, "store"));
    store.load(state.rv, state.objects);
    wal = openWal(join(opts.dataDir, "store"), state);
    store.setWal(wal);
  }
  const hub = new WatchHub(store);
  const webhooks = new Webhooks(store);
  const rbac = new RbacAuthorizer(store);
  // eslint-disable-next-line prefer-const
  let api: Api;
  const controllers = new Controllers(store, registry, hub, () => api);
  api = new Api(store, webhooks, {
    prepareCrd,
    afterCommit: (t, ev, o) => controllers.afterCommit(t, ev, o),
  });
  controllers.syncAllCrds();
  const openapi = new OpenApiCache(registry);
  const faults: FaultState = { ...newFaultState(), ...(opts.faults ?? {}) };
  const requests = new RequestLog();

  // Precreate the namespaces every cluster has.
  const nsType = registry.get("", "v1", "namespaces");
  for (const ns of ["default", "kube-system", "kube-public", "kube-node-lease"]) {
    if (nsType && !store.get("/namespaces", undefined, ns)) {
      await api.create(systemInfo(nsType), { metadata: { name: ns } });
    }
  }

  let hostPort = "";
  const sockets = new Set<Socket>();

  function systemInfo(t: ResourceType, ns?: string): RequestInfo {
    const i: RequestInfo = {
      type: t,
      dryRun: false,
      fieldValidation: "Ignore",
      fieldManager: "bulwark-dev-cluster",
      username: "system:apiserver",
      warnings: [],
    };
    if (ns) i.namespace = ns;
    return i;
  }

  function resolveRoute(group: string, version: string, segs: string[]): Route | undefined {
    const typeOf = (r: string | undefined) => (r === undefined ? undefined : registry.get(group, version, r));
    if (segs[0] === "namespaces" && segs.length >= 3) {
      const t = typeOf(segs[2]);
      if (t && t.namespaced && segs.length <= 5) {
        const r: Route = { type: t, namespace: segs[1] ?? "" };
        if (segs[3] !== undefined) r.name = segs[3];
        if (segs[4] !== undefined) r.subresource = segs[4];
        return r;
      }
    }
    const t = typeOf(segs[0]);
    if (!t || segs.length > 3) return undefined;
    const r: Route = { type: t };
    if (segs[1] !== undefined) {
      if (t.namespaced) return undefined; // namespaced items need a namespace
      r.name = segs[1];
    }
    if (segs[2] !== undefined) r.subresource = segs[2];
    return r;
  }

  function fieldValidationOf(q: URLSearchParams): FieldValidation {
    const v = q.get("fieldValidation");
    if (v === null || v === "") return "Warn";
    if (v === "Strict" || v === "Warn" || v === "Ignore") return v;
    throw invalid("meta.k8s.io", "CreateOptions", "", [
      {
        reason: "FieldValueNotSupported",
        message: `Unsupported value: "${v}": supported values: "Ignore", "Strict", "Warn"`,
        field: "fieldValidation",
      },
    ]);
  }

  async function handleResource(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    q: URLSearchParams,
    user: User,
  ): Promise<void> {
    const { type: t } = route;
    const method = req.method ?? "GET";
    const dryRunValues = q.getAll("dryRun");
    for (const d of dryRunValues)
      if (d !== "All")
        throw invalid("meta.k8s.io", "CreateOptions", "", [
          {
            reason: "FieldValueNotSupported",
            message: `Unsupported value: "${d}": supported values: "All"`,
            field: "dryRun",
          },
        ]);
    const isApply =
      method === "PATCH" && (req.headers["content-type"] ?? "").startsWith("application/apply-patch");
    const fmParam = q.get("fieldManager");
    const info: RequestInfo = {
      type: t,
      dryRun: dryRunValues.length > 0,
      fieldValidation: fieldValidationOf(q),
      fieldManager: isApply ? (fmParam ?? "") : managerName(fmParam, req.headers["user-agent"]),
      username: user.username,
      warnings: [],
    };
    if (req.headers["user-agent"]) info.userAgent = req.headers["user-agent"];
    if (route.namespace !== undefined) info.namespace = route.namespace;
    if (route.name !== undefined) info.name = route.name;
    const sub = route.subresource;
    if (sub !== undefined) {
      if (!t.subresources.includes(sub)) throw notFoundPath();
      info.subresource = sub;
    }
    const accept = req.headers.accept;
    const include = (q.get("includeObject") ?? "Metadata") as IncludeObject;
    const table = wantsTable(accept) && sub === undefined;

    // special subresources and virtual kinds
    if (sub === "token") {
      if (method !== "POST") throw methodNotAllowed();
      const body = await readObjectBody(req);
      sendJson(res, 201, tokenRequest(store, auth, route.namespace ?? "", route.name ?? "", body));
      return;
    }
    if (t.resource === "tokenreviews" && t.group === "authentication.k8s.io") {
      if (method !== "POST" || route.name !== undefined) throw methodNotAllowed();
      sendJson(res, 201, tokenReview(store, auth, await readObjectBody(req)));
      return;
    }
    if (t.resource === "selfsubjectreviews" || t.resource === "selfsubjectaccessreviews") {
      if (method !== "POST" || route.name !== undefined) throw methodNotAllowed();
      const body = await readObjectBody(req);
      const review: Obj = {
        ...(isObj(body) ? body : {}),
        apiVersion: gvString(t.group, t.version),
        kind: t.kind,
        metadata: { creationTimestamp: null },
      };
      review.status =
        t.resource === "selfsubjectreviews"
          ? {
              userInfo: {
                username: user.username,
                uid: user.uid,
                groups: user.groups,
                ...(user.extra ? { extra: user.extra } : {}),
              },
            }
          : selfAccessReview(rbac, user, isObj(body) && isObj(body.spec) ? body.spec : {});
      return sendJson(res, 201, review);
    }
    if (sub === "scale") {
      const paths = scalePaths(t);
      if (!paths) throw notFoundPath();
      const mainInfo: RequestInfo = { ...info };
      delete mainInfo.subresource;
      const current = api.get(mainInfo);
      if (method === "GET") return sendJson(res, 200, toScale(t, current, paths));
      let wanted: unknown;
      if (method === "PUT") wanted = await readObjectBody(req);
      else if (method === "PATCH") {
        const ct = (req.headers["content-type"] ?? "").split(";")[0]?.trim();
        const raw = parseJsonBody(await readBody(req));
        const scale = toScale(t, current, paths);
        wanted = ct === "application/json-patch+json" ? jsonPatch(scale, raw) : mergePatch(scale, raw);
      } else throw methodNotAllowed();
      const updated = await api.update(mainInfo, applyScale(current, wanted, paths), {
        isPatch: method === "PATCH",
      });
      return sendJson(res, 200, toScale(t, updated, paths), info.warnings);
    }
    if (sub === "finalize") {
      if (method !== "PUT") throw methodNotAllowed();
      sendJson(res, 200, api.finalizeNamespace(info, await readObjectBody(req)));
      return;
    }

    if (route.name === undefined) {
      // collection
      if (method === "GET") {
        if (t.namespaced && route.namespace === undefined && !t.verbs.includes("list"))
          throw methodNotAllowed();
        const label = parseLabelSelector(q.get("labelSelector"));
        const fieldLabels = [
          "metadata.name",
          ...(t.namespaced ? ["metadata.namespace"] : []),
          ...t.fieldLabels,
        ];
        const field = parseFieldSelector(q.get("fieldSelector"), fieldLabels);
        const watch = q.get("watch");
        if (watch === "true" || watch === "1") {
          const spec: Parameters<WatchHub["serve"]>[0] = {
            type: t,
            bookmarks: q.get("allowWatchBookmarks") === "true",
            bookmarkIntervalMs: (opts.bookmarkIntervalSeconds ?? 30) * 1000,
          };
          if (route.namespace !== undefined) spec.namespace = route.namespace;
          if (label) spec.label = label;
          if (field) spec.field = field;
          const rv = q.get("resourceVersion");
          if (rv !== null) spec.resourceVersion = rv;
          if (q.get("sendInitialEvents") === "true") {
            if (q.get("resourceVersionMatch") !== "NotOlderThan" || !spec.bookmarks)
              throw invalid("meta.k8s.io", "ListOptions", "", [
                {
                  reason: "FieldValueForbidden",
                  message:
                    "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan and allowWatchBookmarks",
                  field: "sendInitialEvents",
                },
              ]);
            spec.sendInitialEvents = true;
          }
          const ts = q.get("timeoutSeconds");
          if (ts !== null) spec.timeoutSeconds = Number(ts);
          if (table) spec.table = include;
          await until(() => !faults.holdWatches || req.destroyed);
          if (req.destroyed) return;
          hub.serve(spec, res, (cb) => {
            req.on("close", cb);
            res.on("close", cb);
          });
          return;
        }
        const limitRaw = q.get("limit");
        const listOpts: Parameters<Api["list"]>[1] = {};
        if (label) listOpts.label = label;
        if (field) listOpts.field = field;
        if (limitRaw) listOpts.limit = Number(limitRaw);
        const cont = q.get("continue");
        if (cont) listOpts.continueToken = cont;
        const r = api.list(info, listOpts);
        const metadata: Obj = { resourceVersion: r.rv };
        if (r.continueToken) {
          metadata.continue = r.continueToken;
          metadata.remainingItemCount = r.remaining;
        }
        if (table) {
          const tab = toTable(t, r.items, include);
          tab.metadata = metadata;
          sendJson(res, 200, tab);
        } else {
          sendJson(res, 200, {
            kind: t.listKind,
            apiVersion: gvString(t.group, t.version),
            metadata,
            items: r.items,
          });
        }
        return;
      }
      if (method === "POST") {
        const body = await readObjectBody(req);
        const created = await api.create(info, body);
        sendJson(res, 201, created, info.warnings);
        return;
      }
      if (method === "DELETE") {
        const label = parseLabelSelector(q.get("labelSelector"));
        const fieldLabels = [
          "metadata.name",
          ...(t.namespaced ? ["metadata.namespace"] : []),
          ...t.fieldLabels,
        ];
        const field = parseFieldSelector(q.get("fieldSelector"), fieldLabels);
        const body = await readObjectBody(req);
        const o: Parameters<Api["deleteCollection"]>[1] = {};
        if (label) o.label = label;
        if (field) o.field = field;
        sendJson(res, 200, await api.deleteCollection(info, o, body), info.warnings);
        return;
      }
      throw methodNotAllowed();
    }

    // item
    switch (method) {
      case "GET": {
        const o = api.get(info);
        if (table) {
          const tab = toTable(t, [o], include);
          tab.metadata = { resourceVersion: meta(o).resourceVersion };
          sendJson(res, 200, tab);
        } else sendJson(res, 200, o);
        return;
      }
      case "PUT": {
        const body = await readObjectBody(req);
        sendJson(res, 200, await api.update(info, body), info.warnings);
        return;
      }
      case "PATCH": {
        const raw = await readBody(req);
        const forceRaw = q.get("force");
        const force = forceRaw === null ? undefined : forceRaw === "true" || forceRaw === "1";
        const r = await api.patch(info, req.headers["content-type"] ?? "", raw, force);
        sendJson(res, r.created ? 201 : 200, r.object, info.warnings);
        return;
      }
      case "DELETE": {
        if (sub !== undefined) throw methodNotAllowed();
        const body = await readObjectBody(req);
        const o = await api.delete(info, body);
        const gone = !meta(o).deletionTimestamp || api.view(t, o) === undefined;
        sendJson(res, 200, gone && !meta(o).finalizers ? api.deletedStatus(t, o) : o, info.warnings);
        return;
      }
      default:
        throw methodNotAllowed();
    }
  }

  async function applyFault(f: FaultRequest): Promise<void> {
    switch (f.action) {
      case "dropWatches":
        hub.dropAll();
        return;
      case "failNext":
        faults.failNext = f.count;
        faults.failCode = f.code ?? 503;
        return;
      case "latency":
        faults.latencyMs = f.ms;
        return;
      case "compact":
        store.compact();
        hub.dropAll();
        return;
      case "restart":
        await restart();
        return;
      case "reset":
        Object.assign(faults, newFaultState());
        return;
      case "holdWatches":
        faults.holdWatches = f.hold;
        return;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "https://localhost");
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const q = url.searchParams;
    if (path === "/_bulwark/faults") {
      const user = auth.authenticate(req.headers.authorization);
      if (!user) throw unauthorized();
      if (user.username !== "bulwark-admin")
        throw forbidden("fault injection is available to the admin token only");
      if (req.method !== "POST") throw methodNotAllowed();
      await applyFault(parseFaultRequest(await readObjectBody(req)));
      sendJson(res, 200, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", code: 200 });
      return;
    }
    if (faults.latencyMs > 0) await new Promise((r) => setTimeout(r, faults.latencyMs));
    if (faults.failNext > 0 && !PUBLIC_PATHS.has(path)) {
      faults.failNext--;
      const { reason, message } = faultStatus(faults.failCode);
      const headers: Record<string, string> = faults.failCode === 429 ? { "Retry-After": "1" } : {};
      throw new ApiError(
        faults.failCode,
        reason,
        message,
        faults.failCode === 429 ? { retryAfterSeconds: 1 } : undefined,
        headers,
      );
    }
    if (path === "/version") return sendJson(res, 200, discovery.versionInfo());
    if (path === "/healthz" || path === "/livez" || path === "/readyz") {
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.end("ok");
      return;
    }
    const user = auth.authenticate(req.headers.authorization);
    if (!user) throw unauthorized();
    const accept = req.headers.accept;
    const agg = discovery.wantsAggregated(accept);
    if (path === "/api") {
      if (agg)
        return sendJson(res, 200, discovery.aggregatedApi(registry), [], discovery.AGGREGATED_CONTENT_TYPE);
      return sendJson(res, 200, discovery.legacyApi(hostPort));
    }
    if (path === "/apis") {
      if (agg)
        return sendJson(res, 200, discovery.aggregatedApis(registry), [], discovery.AGGREGATED_CONTENT_TYPE);
      return sendJson(res, 200, discovery.legacyApis(registry));
    }
    if (path === "/openapi/v3") return sendJson(res, 200, openapi.root());
    if (path.startsWith("/openapi/v3/")) {
      const doc = openapi.document(path.slice("/openapi/v3/".length));
      if (!doc) throw notFoundPath();
      res.writeHead(200, {
        "Content-Type": "application/json",
        "Cache-Control": "public, immutable",
        "Content-Length": String(Buffer.byteLength(doc)),
      });
      res.end(doc);
      return;
    }
    const segs = path
      .split("/")
      .filter((s) => s !== "")
      .map(decodeURIComponent);
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === "api") {
      if (segs.length === 1) throw notFoundPath();
      group = "";
      version = segs[1] ?? "";
      rest = segs.slice(2);
    } else if (segs[0] === "apis") {
      group = segs[1] ?? "";
      if (segs.length === 2) {
        const g = discovery.legacyGroup(registry, group);
        if (!g) throw notFoundPath();
        return sendJson(res, 200, g);
      }
      version = segs[2] ?? "";
      rest = segs.slice(3);
    } else throw notFoundPath();
    if (rest.length === 0) {
      const list = discovery.resourceList(registry, group, version);
      if (!list) throw notFoundPath();
      return sendJson(res, 200, list);
    }
    const route = resolveRoute(group, version, rest);
    if (!route) throw notFoundPath();
    // RBAC (rbac.ts): ServiceAccounts get only what their bindings grant; the admin token bypasses.
    const attributes: ResourceAttributes = {
      verb: verbOf(
        req.method ?? "GET",
        route.name !== undefined,
        ["true", "1"].includes(q.get("watch") ?? ""),
      ),
      group: route.type.group,
      resource: route.type.resource,
      ...(route.subresource !== undefined ? { subresource: route.subresource } : {}),
      ...(route.namespace !== undefined ? { namespace: route.namespace } : {}),
      ...(route.name !== undefined ? { name: route.name } : {}),
    };
    const decision = rbac.authorize(user, attributes);
    opts.onAuthorize?.(user, attributes, decision);
    if (!decision.allowed) throw forbiddenFor(user, attributes);
    await handleResource(req, res, route, q, user);
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    requests.record(req, res, () => auth.authenticate(req.headers.authorization)?.username ?? "");
    handle(req, res).catch((err: unknown) => {
      if (err instanceof ApiError) {
        if (res.headersSent) return void res.end();
        const s = err.toStatus();
        const body = JSON.stringify(s);
        res.writeHead(err.code, {
          ...err.headers,
          "Content-Type": "application/json",
          "Content-Length": String(Buffer.byteLength(body)),
        });
        res.end(body);
        return;
      }
      const e = new ApiError(
        500,
        "InternalError",
        `Internal error occurred: ${(err as Error).message ?? String(err)}`,
      );
      if (res.headersSent) return void res.end();
      sendJson(res, 500, e.toStatus());
    });
  }

  let server: Server = createServer({ key: tls.keyPem, cert: tls.certPem }, onRequest);
  const listen = (s: Server, port: number) =>
    new Promise<number>((resolve, reject) => {
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => {
        s.off("error", reject);
        const addr = s.address();
        resolve(typeof addr === "object" && addr ? addr.port : port);
      });
    });
  const track = (s: Server) =>
    s.on("connection", (sock: Socket) => {
      sockets.add(sock);
      sock.on("close", () => sockets.delete(sock));
    });
  track(server);
  const port = await listen(server, opts.port ?? 0);
  hostPort = `127.0.0.1:${port}`;
  const url = `https://${hostPort}`;

  async function closeServer(): Promise<void> {
    hub.dropAll();
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const s of sockets) s.destroy();
    await closed;
  }

  /** Simulates an apiserver restart: connections drop, the watch cache is lost (old RVs get 410). */
  async function restart(): Promise<void> {
    setImmediate(() => {
      void (async () => {
        await closeServer();
        store.compact();
        server = createServer({ key: tls.keyPem, cert: tls.certPem }, onRequest);
        track(server);
        await listen(server, port);
      })();
    });
  }

  const kubeconfigFor = (token?: string, namespace?: string) => {
    const o: Parameters<typeof kubeconfigYaml>[0] = {
      url,
      caPem: tls.caPem,
      token: token ?? auth.adminToken,
    };
    if (namespace) o.namespace = namespace;
    return kubeconfigYaml(o);
  };
  const writeKubeconfig = (p: string, token?: string) => {
    writeFileSync(p, kubeconfigFor(token), { mode: 0o600 });
    return p;
  };
  if (opts.kubeconfigPath) writeKubeconfig(opts.kubeconfigPath);

  return {
    url,
    port,
    adminToken: auth.adminToken,
    caPem: tls.caPem,
    kubeconfigFor,
    writeKubeconfig,
    faults: {
      dropWatches: () => hub.dropAll(),
      failNext: (count, code = 503) => {
        faults.failNext = count;
        faults.failCode = code;
      },
      latency: (ms) => {
        faults.latencyMs = ms;
      },
      compact: () => {
        store.compact();
        hub.dropAll();
      },
      restart: async () => {
        await closeServer();
        store.compact();
        server = createServer({ key: tls.keyPem, cert: tls.certPem }, onRequest);
        track(server);
        await listen(server, port);
      },
      reset: () => Object.assign(faults, newFaultState()),
      holdWatches: (hold) => {
        faults.holdWatches = hold;
      },
    },
    requests,
    expiredWatches: () => hub.expired,
    resourceVersion: () => store.currentRv(),
    watchCount: () => hub.size,
    stop: async () => {
      await closeServer();
      wal?.close();
    },
  };
}

/** A SelfSubjectAccessReview's status for `kubectl auth can-i`, from RBAC. */
function selfAccessReview(rbac: RbacAuthorizer, user: User, spec: Obj): Obj {
  const ra = isObj(spec.resourceAttributes) ? spec.resourceAttributes : undefined;
  if (!ra) return { allowed: true, reason: "non-resource URLs are open to authenticated users" };
  const s = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const a: ResourceAttributes = {
    verb: s(ra.verb) ?? "get",
    group: s(ra.group) ?? "",
    resource: s(ra.resource) ?? "",
  };
  if (s(ra.subresource)) a.subresource = s(ra.subresource);
  if (s(ra.namespace)) a.namespace = s(ra.namespace);
  if (s(ra.name)) a.name = s(ra.name);
  const d = rbac.authorize(user, a);
  return d.allowed ? { allowed: true, reason: d.reason } : { allowed: false };
}
