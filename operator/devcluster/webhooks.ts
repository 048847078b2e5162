// Admission webhooks: registered Mutating/ValidatingWebhookConfigurations are called over HTTPS with
// AdmissionReview v1, honouring rules, namespaceSelector, objectSelector, caBundle, timeoutSeconds and
// failurePolicy (https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/).
// A `service` clientConfig resolves through that Service's Endpoints (the dev cluster runs no kube-proxy),
// so a test can point a Service at a webhook server on 127.0.0.1.
import { evaluate } from "@marcbachmann/cel-js";
import { randomUUID } from "node:crypto";
import { request as httpsRequest } from "node:https";
import type { Admission, Operation, RequestInfo } from "./api.js";
import { jsonPatch } from "./patch.js";
import { matchLabelSelectorObject } from "./selectors.js";
import { ApiError } from "./status.js";
import type { Store } from "./store.js";
import { isObj, jsonEqual, meta, str, type Obj } from "./util.js";

const MUTATING = "admissionregistration.k8s.io/mutatingwebhookconfigurations";
const VALIDATING = "admissionregistration.k8s.io/validatingwebhookconfigurations";

interface Target {
  url: string;
  servername?: string;
}

function labelsOf(o: Obj | undefined): Record<string, string> {
  const m = o && isObj(o.metadata) ? o.metadata : {};
  return (isObj(m.labels) ? m.labels : {}) as Record<string, string>;
}

function matchList(list: unknown, value: string): boolean {
  const l = Array.isArray(list) ? list.map(String) : [];
  return l.includes("*") || l.includes(value);
}

function matchResource(list: unknown, resource: string, sub: string | undefined): boolean {
  const l = Array.isArray(list) ? list.map(String) : [];
  const full = sub ? `${resource}/${sub}` : resource;
  return l.some((r) => {
    if (r === "*/*") return true;
    if (r === "*") return !sub;
    if (r === full) return true;
    const [rr, rs] = r.split("/");
    if (rs === "*") return rr === resource && !!sub;
    if (rr === "*") return !!sub && rs === sub;
    return false;
  });
}

export class Webhooks implements Admission {
  constructor(private readonly store: Store) {}

  private rulesMatch(wh: Obj, info: RequestInfo, op: Operation): boolean {
    const t = info.type;
    const rules = Array.isArray(wh.rules) ? wh.rules.filter(isObj) : [];
    return rules.some((r) => {
      if (!matchList(r.operations, op)) return false;
      if (!matchList(r.apiGroups, t.group)) return false;
      if (!matchList(r.apiVersions, t.version)) return false;
      if (!matchResource(r.resources, t.resource, info.subresource)) return false;
      const scope = str(r.scope) ?? "*";
      if (scope === "Namespaced" && !t.namespaced) return false;
      if (scope === "Cluster" && t.namespaced) return false;
      return true;
    });
  }

  private selectorsMatch(wh: Obj, info: RequestInfo, obj: Obj | undefined, old: Obj | undefined): boolean {
    const t = info.type;
    if (isObj(wh.namespaceSelector)) {
      let nsLabels: Record<string, string> | undefined;
      if (t.resource === "namespaces" && !t.group) nsLabels = labelsOf(obj ?? old);
      else if (t.namespaced)
        nsLabels = labelsOf(this.store.get("/namespaces", undefined, info.namespace ?? ""));
      if (nsLabels && !matchLabelSelectorObject(wh.namespaceSelector, nsLabels)) return false;
    }
    if (isObj(wh.objectSelector)) {
      const hit = [obj, old].some((o) => o && matchLabelSelectorObject(wh.objectSelector, labelsOf(o)));
      if (!hit) return false;
    }
    return true;
  }

  /**
   * matchConditions (CEL over `object`, `oldObject`, `request`): the webhook is called only when all are
   * true. An evaluation error counts as a call failure (failurePolicy decides).
   */
  private conditionsMatch(wh: Obj, review: Obj): boolean {
    const conds = Array.isArray(wh.matchConditions) ? wh.matchConditions.filter(isObj) : [];
    if (conds.length === 0) return true;
    const req = isObj(review.request) ? review.request : {};
    const ctx = {
      object: toCel(req.object ?? null),
      oldObject: toCel(req.oldObject ?? null),
      request: toCel(req),
    };
    for (const c of conds) {
      let v: unknown;
      try {
        v = evaluate(String(c.expression ?? "true"), ctx as Record<string, unknown>);
      } catch (err) {
        if (wh.failurePolicy === "Ignore") return false;
        throw new ApiError(
          500,
          "InternalError",
          `Internal error occurred: failed calling webhook "${String(wh.name)}": matchCondition "${String(c.name)}" failed: ${(err as Error).message}`,
        );
      }
      if (v !== true) return false;
    }
    return true;
  }

  private target(wh: Obj): Target | undefined {
    const cc = isObj(wh.clientConfig) ? wh.clientConfig : {};
    if (typeof cc.url === "string") return { url: cc.url };
    if (isObj(cc.service)) {
      const ns = str(cc.service.namespace) ?? "default";
      const name = str(cc.service.name) ?? "";
      const port = Number(cc.service.port ?? 443);
      const path = str(cc.service.path) ?? "/";
      const ep = this.store.get("/endpoints", ns, name);
      const subsets = ep && Array.isArray(ep.subsets) ? ep.subsets.filter(isObj) : [];
      // the Service port maps to an endpoint port by name, else by a numeric targetPort, else by number
      const svc = this.store.get("/services", ns, name);
      const svcPorts =
        svc && isObj(svc.spec) && Array.isArray(svc.spec.ports) ? svc.spec.ports.filter(isObj) : [];
      const sp = svcPorts.find((x) => Number(x.port) === port);
      for (const s of subsets) {
        const addr = (Array.isArray(s.addresses) ? s.addresses.filter(isObj) : [])[0];
        const ports = Array.isArray(s.ports) ? s.ports.filter(isObj) : [];
        const p =
          (sp && typeof sp.name === "string" ? ports.find((x) => x.name === sp.name) : undefined) ??
          (sp && typeof sp.targetPort === "number"
            ? ports.find((x) => Number(x.port) === sp.targetPort)
            : undefined) ??
          (ports.length === 1 ? ports[0] : ports.find((x) => Number(x.port) === port));
        if (addr && typeof addr.ip === "string") {
          return {
            url: `https://${addr.ip}:${Number(p?.port ?? port)}${path}`,
            servername: `${name}.${ns}.svc`,
          };
        }
      }
      return undefined;
    }
    return undefined;
  }

  private call(wh: Obj, review: Obj): Promise<Obj> {
    const target = this.target(wh);
    if (!target) return Promise.reject(new Error("no endpoints for the webhook's service"));
    const cc = isObj(wh.clientConfig) ? wh.clientConfig : {};
    const ca =
      typeof cc.caBundle === "string" ? Buffer.from(cc.caBundle, "base64").toString("utf8") : undefined;
    const timeoutMs = Number(wh.timeoutSeconds ?? 10) * 1000;
    const body = JSON.stringify(review);
    return new Promise((resolve, reject) => {
      const opts: Parameters<typeof httpsRequest>[1] = {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "Content-Length": String(Buffer.byteLength(body)),
        },
        timeout: timeoutMs,
      };
      if (ca) opts.ca = ca;
      if (target.servername) opts.servername = target.servername;
      const req = httpsRequest(target.url, opts, (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => {
          if ((res.statusCode ?? 0) >= 300)
            return reject(new Error(`the server responded with status ${res.statusCode}`));
          try {
            resolve(JSON.parse(text) as Obj);
          } catch (err) {
            reject(new Error(`invalid AdmissionReview response: ${(err as Error).message}`));
          }
        });
      });
      req.on("timeout", () =>
        req.destroy(new Error(`context deadline exceeded (timeout ${timeoutMs / 1000}s)`)),
      );
      req.on("error", reject);
      req.end(body);
    });
  }

  private review(info: RequestInfo, op: Operation, obj: Obj | undefined, old: Obj | undefined): Obj {
    const t = info.type;
    const kind = { group: t.group, version: t.version, kind: t.kind };
    const resource = { group: t.group, version: t.version, resource: t.resource };
    const request: Obj = {
      uid: randomUUID(),
      kind,
      resource,
      requestKind: kind,
      requestResource: resource,
      name: info.name ?? str(obj ? meta(obj).name : undefined) ?? "",
      operation: op,
      userInfo: { username: info.username, groups: ["system:authenticated"] },
      object: op === "DELETE" ? null : (obj ?? null),
      oldObject: op === "CREATE" ? null : (old ?? null),
      dryRun: info.dryRun,
      options: null,
    };
    if (info.subresource) request.subResource = info.subresource;
    if (t.namespaced) request.namespace = info.namespace ?? "";
    return { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request };
  }

  /** Calls one webhook; returns its response, or undefined when it failed and failurePolicy is Ignore. */
  private async invoke(wh: Obj, review: Obj, info: RequestInfo): Promise<Obj | undefined> {
    const name = str(wh.name) ?? "";
    let res: Obj;
    try {
      res = await this.call(wh, review);
    } catch (err) {
      if (wh.failurePolicy === "Ignore") return undefined;
      throw new ApiError(
        500,
        "InternalError",
        `Internal error occurred: failed calling webhook "${name}": failed to call webhook: ${(err as Error).message}`,
      );
    }
    const response = isObj(res.response) ? res.response : undefined;
    const reqUid = isObj(review.request) ? review.request.uid : undefined;
    if (!response || response.uid !== reqUid) {
      if (wh.failurePolicy === "Ignore") return undefined;
      throw new ApiError(
        500,
        "InternalError",
        `Internal error occurred: failed calling webhook "${name}": expected response.uid="${String(reqUid)}", got "${String(response?.uid)}"`,
      );
    }
    if (Array.isArray(response.warnings)) info.warnings.push(...response.warnings.map(String));
    if (response.allowed !== true) throw denial(name, isObj(response.status) ? response.status : {});
    return response;
  }

  private configs(storeKey: string): Obj[] {
    return this.store.listRaw(storeKey).filter((c) => !(isObj(c.metadata) && c.metadata.deletionTimestamp));
  }

  private skip(info: RequestInfo): boolean {
    // like the real server, webhook configurations themselves are never sent to webhooks
    return info.type.group === "admissionregistration.k8s.io";
  }

  async mutate(info: RequestInfo, op: Operation, obj: Obj, old: Obj | undefined): Promise<Obj> {
    if (this.skip(info)) return obj;
    let current = obj;
    // (webhook, the change count when it was called) — for reinvocationPolicy: IfNeeded
    const called: { wh: Obj; changesSeen: number }[] = [];
    let changes = 0;
    const run = async (wh: Obj) => {
      const response = await this.invoke(wh, this.review(info, op, current, old), info);
      if (response && typeof response.patch === "string" && response.patch !== "") {
        const ops = JSON.parse(Buffer.from(response.patch, "base64").toString("utf8")) as unknown;
        let next: Obj;
        try {
          next = jsonPatch(current, ops) as Obj;
        } catch (err) {
          throw new ApiError(
            500,
            "InternalError",
            `Internal error occurred: JSON patch from webhook "${String(wh.name)}" failed: ${(err as Error).message}`,
          );
        }
        if (!jsonEqual(next, current)) changes++;
        current = next;
      }
    };
    for (const cfg of this.configs(MUTATING)) {
      for (const wh of Array.isArray(cfg.webhooks) ? cfg.webhooks.filter(isObj) : []) {
        if (!this.rulesMatch(wh, info, op) || !this.selectorsMatch(wh, info, current, old)) continue;
        if (!this.conditionsMatch(wh, this.review(info, op, current, old))) continue;
        await run(wh);
        called.push({ wh, changesSeen: changes });
      }
    }
    // https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#reinvocation-policy:
    // a webhook asking for it is called once more when a later webhook changed the object after it ran.
    for (const c of called) {
      if (c.wh.reinvocationPolicy === "IfNeeded" && changes > c.changesSeen) await run(c.wh);
    }
    return current;
  }

  async validate(info: RequestInfo, op: Operation, obj: Obj, old: Obj | undefined): Promise<void> {
    if (this.skip(info)) return;
    const calls: Promise<unknown>[] = [];
    for (const cfg of this.configs(VALIDATING)) {
      for (const wh of Array.isArray(cfg.webhooks) ? cfg.webhooks.filter(isObj) : []) {
        const o = op === "DELETE" ? undefined : obj;
        if (!this.rulesMatch(wh, info, op) || !this.selectorsMatch(wh, info, o, old)) continue;
        const review = this.review(info, op, o, old);
        if (!this.conditionsMatch(wh, review)) continue;
        calls.push(this.invoke(wh, review, info));
      }
    }
    const results = await Promise.allSettled(calls);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
  }
}

/** The Status a denial becomes, as the apiserver builds it (webhook errors ToStatusErr). */
function denial(name: string, status: Obj): ApiError {
  const deniedBy = `admission webhook "${name}" denied the request`;
  const code = typeof status.code === "number" && status.code >= 400 ? status.code : 400;
  const message = str(status.message)
    ? `${deniedBy}: ${String(status.message)}`
    : str(status.reason)
      ? `${deniedBy}: ${String(status.reason)}`
      : `${deniedBy} without explanation`;
  const details = isObj(status.details)
    ? (status.details as ConstructorParameters<typeof ApiError>[3])
    : undefined;
  return new ApiError(code, str(status.reason) ?? "", message, details);
}

/** JSON → CEL values: integers become int (bigint), as the apiserver's CEL sees them. */
function toCel(v: unknown): unknown {
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  if (Array.isArray(v)) return v.map(toCel);
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toCel(x)]));
  return v;
}
