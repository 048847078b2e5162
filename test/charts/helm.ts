// The pinned helm and kubectl (.bulwark/bin, extracted by scripts/install-tools.sh), for the chart tests.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const CHART_DIR = `${ROOT}charts/bulwark`;
export const HELM = `${ROOT}.bulwark/bin/helm`;
export const KUBECTL = `${ROOT}.bulwark/bin/kubectl`;
export const RELEASE = "bulwark";
export const NAMESPACE = "bulwark-system";

export function ensureTools(): void {
  if (!existsSync(HELM) || !existsSync(KUBECTL)) execFileSync(`${ROOT}scripts/install-tools.sh`, { stdio: "inherit" });
}

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

const ENV = {
  HELM_CACHE_HOME: "/tmp/bulwark-helm/cache",
  HELM_CONFIG_HOME: "/tmp/bulwark-helm/config",
  HELM_DATA_HOME: "/tmp/bulwark-helm/data",
};

/** Like run, without blocking the event loop (needed when the dev cluster runs in this process). */
export function runAsync(bin: string, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: { ...process.env, ...ENV }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ status: code ?? -1, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

export function run(bin: string, args: string[], input?: string): Run {
  const r = spawnSync(bin, args, {
    encoding: "utf8",
    input,
    env: { ...process.env, HELM_CACHE_HOME: "/tmp/bulwark-helm/cache", HELM_CONFIG_HOME: "/tmp/bulwark-helm/config", HELM_DATA_HOME: "/tmp/bulwark-helm/data" },
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** `helm template` of the chart with a fixed release name and namespace; throws on failure. */
export function template(args: string[] = []): string {
  const r = run(HELM, ["template", RELEASE, CHART_DIR, "--namespace", NAMESPACE, ...args]);
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return r.stdout;
}
