// `bulwark dev-cluster` as a process: prints `ready <url>`, writes a kubeconfig kubectl uses as is,
// says it is a development cluster, stops cleanly on SIGTERM.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { KUBECTL, ROOT, until } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "bulwark-dc-cli-"));
const TSX = join(ROOT, "node_modules/.bin/tsx");
const MAIN = join(ROOT, "operator/cli/main.ts");

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]) {
  const child = spawn(TSX, [MAIN, "dev-cluster", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number>((r) => child.on("close", (code) => r(code ?? -1)));
  return { child, out, exited };
}

describe("bulwark dev-cluster", () => {
  it("--help says it is a development cluster and lists the flags", async () => {
    const p = run(["--help"]);
    expect(await p.exited).toBe(0);
    expect(p.out.stdout).toContain("DEVELOPMENT cluster, like envtest or kwok");
    for (const flag of ["--port", "--kubeconfig", "--data"]) expect(p.out.stdout).toContain(flag);
  });

  it("exits 2 without --kubeconfig", async () => {
    const p = run(["--port", "0"]);
    expect(await p.exited).toBe(2);
    expect(p.out.stderr).toContain("--kubeconfig FILE is required");
  });

  it("serves until SIGTERM with a kubeconfig kubectl accepts", async () => {
    const kubeconfig = join(dir, "kubeconfig");
    const p = run(["--port", "0", "--kubeconfig", kubeconfig, "--data", join(dir, "data")]);
    try {
      const url = await until(
        "ready line",
        () => /^ready (https:\/\/127\.0\.0\.1:\d+)$/m.exec(p.out.stdout)?.[1],
        30_000,
      );
      expect(p.out.stdout.trim().split("\n")).toEqual([`ready ${url}`]);
      const r = await new Promise<{ code: number; out: string }>((resolve) => {
        const k = spawn(KUBECTL, ["get", "namespaces", "-o", "name"], {
          env: {
            PATH: process.env.PATH ?? "",
            HOME: dir,
            KUBECONFIG: kubeconfig,
            KUBECACHEDIR: join(dir, "cache"),
          },
        });
        let out = "";
        k.stdout.on("data", (d: Buffer) => (out += d.toString()));
        k.on("close", (code) => resolve({ code: code ?? -1, out }));
      });
      expect(r.code).toBe(0);
      expect(r.out.split("\n")).toContain("namespace/default");
    } finally {
      p.child.kill("SIGTERM");
    }
    expect(await p.exited).toBe(0);
  });
});
