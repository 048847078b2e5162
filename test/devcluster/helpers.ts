// Shared set-up for the dev cluster conformance suites: one in-process server per test file, the
// pinned kubectl (never the PATH one, a version dispatcher) with its own KUBECONFIG and KUBECACHEDIR.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  startDevCluster,
  type DevCluster,
  type DevClusterOptions,
} from "../../operator/devcluster/server.js";

const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(HERE, "../..");
export const KUBECTL = join(ROOT, ".bulwark/bin/kubectl");
export const FIXTURES = join(HERE, "fixtures");

export interface Harness {
  cluster: DevCluster;
  dir: string;
  kubeconfig: string;
  kubectl(
    args: string[],
    opts?: { input?: string; env?: Record<string, string>; timeoutMs?: number },
  ): Promise<KubectlResult>;
  /** Raw HTTPS request with the admin token (or `token`). */
  request(
    method: string,
    path: string,
    opts?: { body?: unknown; contentType?: string; accept?: string; token?: string | null },
  ): Promise<HttpResult>;
  stop(): Promise<void>;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Record<string, unknown>;
}

export async function startHarness(opts: DevClusterOptions = {}): Promise<Harness> {
  if (!existsSync(KUBECTL)) throw new Error(`${KUBECTL} missing: run ./scripts/install-tools.sh`);
  const dir = mkdtempSync(join(tmpdir(), "bulwark-dc-test-"));
  const cluster = await startDevCluster(opts);
  const kubeconfig = cluster.writeKubeconfig(join(dir, "kubeconfig"));
  const kubectl: Harness["kubectl"] = (args, o = {}) =>
    new Promise((resolvePromise, reject) => {
      const child = spawn(KUBECTL, args, {
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          HOME: dir,
          KUBECONFIG: kubeconfig,
          KUBECACHEDIR: join(dir, "cache"),
          ...o.env,
        },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill("SIGKILL"), o.timeoutMs ?? 30_000);
      child.on("error", reject);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolvePromise({ code: code ?? -1, stdout, stderr });
      });
      child.stdin.end(o.input ?? "");
    });
  const request: Harness["request"] = async (method, path, o = {}) => {
    const { request: httpsRequest } = await import("node:https");
    return new Promise((resolvePromise, reject) => {
      const headers: Record<string, string> = { Accept: o.accept ?? "application/json" };
      if (o.token !== null) headers.Authorization = `Bearer ${o.token ?? cluster.adminToken}`;
      let payload: string | undefined;
      if (o.body !== undefined) {
        payload = typeof o.body === "string" ? o.body : JSON.stringify(o.body);
        headers["Content-Type"] = o.contentType ?? "application/json";
        headers["Content-Length"] = String(Buffer.byteLength(payload));
      }
      const req = httpsRequest(`${cluster.url}${path}`, { method, headers, ca: cluster.caPem }, (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => {
          let json: Record<string, unknown> = {};
          try {
            json = JSON.parse(text) as Record<string, unknown>;
          } catch {
            // not JSON
          }
          resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      });
      req.on("error", reject);
      req.end(payload);
    });
  };
  return {
    cluster,
    dir,
    kubeconfig,
    kubectl,
    request,
    stop: async () => {
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function until<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

export function writeTemp(dir: string, name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}
