// The admission webhooks over HTTPS (port 9443 by default): POST /inject (pods of opted-in namespaces),
// POST /inject-opt-in (pods elsewhere, injected only when annotated), POST /validate (ResiliencePolicies),
// GET /healthz. `startWebhooks` also owns the certificate: self-managed (tls.ts: Secret + caBundle, checked
// every `recheckMs` so a rotated certificate is picked up and a caBundle wiped by `helm upgrade` restored) or
// cert-manager's mounted files (re-read on the same period).
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { KubeClient } from "../kube/client.js";
import { injectReview, requestOf, validateReview, type AdmissionReview } from "./admission.js";
import type { InjectorConfig } from "./injector-config.js";
import { ensureSelfManagedTls, patchCaBundle, readCertDir, type ServingTls } from "./tls.js";

const MAX_BODY = 4 * 1024 * 1024;

export interface WebhookLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export interface WebhookServerOptions {
  port: number;
  /** Defaults to 0.0.0.0. */
  host?: string;
  tls: ServingTls;
  /** The injector's config; without it /inject and /inject-opt-in answer "allowed" with no patch. */
  injector?: InjectorConfig;
  /** The CA agents use to trust the operator's distribution certificate (put into injected pods). */
  operatorCaPem?: () => string | undefined;
  logger?: WebhookLogger;
}

export interface WebhookServer {
  readonly port: number;
  readonly url: string;
  /** Swaps the serving certificate for new connections. */
  setTls(tls: ServingTls): void;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error("request body too large"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export async function startWebhookServer(o: WebhookServerOptions): Promise<WebhookServer> {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (req.method === "GET" && path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      return;
    }
    if (req.method !== "POST" || !["/inject", "/inject-opt-in", "/validate"].includes(path)) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    let answer: AdmissionReview;
    try {
      const request = requestOf(JSON.parse(await readBody(req)));
      if (path === "/validate") answer = validateReview(request);
      else if (!o.injector)
        answer = {
          apiVersion: "admission.k8s.io/v1",
          kind: "AdmissionReview",
          response: { uid: request.uid, allowed: true },
        };
      else {
        answer = injectReview(
          request,
          o.injector,
          path === "/inject" ? "namespace" : "object",
          o.operatorCaPem?.(),
        );
        if (answer.response.patch)
          o.logger?.info("injected", { namespace: request.namespace, name: request.name });
      }
    } catch (err) {
      res.writeHead(400, { "content-type": "text/plain" }).end((err as Error).message);
      return;
    }
    const body = JSON.stringify(answer);
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  };
  const server = https.createServer({ cert: o.tls.certPem, key: o.tls.keyPem }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      o.logger?.warn("webhook request failed", { error: (err as Error).message });
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host ?? "0.0.0.0", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `https://${o.host ?? "0.0.0.0"}:${port}`,
    setTls: (tls) => server.setSecureContext({ cert: tls.certPem, key: tls.keyPem }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface WebhookOptions {
  port: number;
  host?: string;
  /** Where the certificate comes from. */
  certificate:
    | {
        kind: "self-managed";
        namespace: string;
        secretName: string;
        service: string;
        mutatingWebhook?: string;
        validatingWebhook?: string;
        /** Extra SAN entries (tests: 127.0.0.1). */
        extraHosts?: readonly string[];
        /** Reissue this long before expiry. Defaults to 30 days. */
        renewBeforeDays?: number;
      }
    | { kind: "files"; dir: string };
  injector?: InjectorConfig;
  /** How often the certificate and caBundles are checked. Defaults to 30 000 ms. */
  recheckMs?: number;
  logger?: WebhookLogger;
}

export interface RunningWebhooks {
  readonly server: WebhookServer;
  /** The current serving certificate (also used for distribution). */
  tls(): ServingTls;
  /** One certificate + caBundle check now (the periodic one, callable from tests). */
  recheck(): Promise<void>;
  stop(): Promise<void>;
}

/** Resolves the certificate, patches the caBundles (best effort, retried), serves the webhooks. */
export async function startWebhooks(client: KubeClient, o: WebhookOptions): Promise<RunningWebhooks> {
  const c = o.certificate;
  const load = (): Promise<ServingTls> =>
    c.kind === "files"
      ? Promise.resolve(readCertDir(c.dir))
      : ensureSelfManagedTls({
          client,
          namespace: c.namespace,
          secretName: c.secretName,
          service: c.service,
          ...(c.extraHosts ? { extraHosts: c.extraHosts } : {}),
          ...(c.renewBeforeDays !== undefined ? { renewBeforeDays: c.renewBeforeDays } : {}),
        });
  let current = await load();
  const patchBundles = async () => {
    if (c.kind !== "self-managed") return;
    for (const [kind, name] of [
      ["mutating", c.mutatingWebhook],
      ["validating", c.validatingWebhook],
    ] as const) {
      if (!name) continue;
      try {
        if (await patchCaBundle(client, kind, name, current.caPem))
          o.logger?.info("caBundle set", { kind, name });
      } catch (err) {
        o.logger?.warn("caBundle not set yet", { kind, name, error: (err as Error).message });
      }
    }
  };
  await patchBundles();
  const server = await startWebhookServer({
    port: o.port,
    ...(o.host ? { host: o.host } : {}),
    tls: current,
    ...(o.injector ? { injector: o.injector } : {}),
    operatorCaPem: () => current.caPem || undefined,
    ...(o.logger ? { logger: o.logger } : {}),
  });
  const recheck = async () => {
    try {
      const next = await load();
      if (next.certPem !== current.certPem) {
        current = next;
        server.setTls(next);
        o.logger?.info("serving certificate reloaded");
      }
    } catch (err) {
      o.logger?.warn("certificate check failed", { error: (err as Error).message });
    }
    await patchBundles();
  };
  const timer = setInterval(() => void recheck(), o.recheckMs ?? 30_000);
  timer.unref();
  return {
    server,
    tls: () => current,
    recheck,
    stop: async () => {
      clearInterval(timer);
      await server.close();
    },
  };
}
