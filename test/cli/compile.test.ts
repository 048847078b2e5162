// `bulwark compile`: exit codes, the problem lines, the output formats, --help. The command is run in-process
// for most cases (fast) and once as a real process through the CLI entry point.
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { parse } from "yaml";
import { parseSidecarConfig, type SidecarConfig } from "../../operator/api/sidecar-config.js";
import { command } from "../../operator/cli/commands/compile.js";
import { CommandError } from "../../operator/cli/command.js";

const root = join(import.meta.dirname, "../..");
const examples = join(root, "examples");

let out: string[];
let err: string[];
beforeEach(() => {
  out = [];
  err = [];
  vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void out.push(a.join(" ")));
  vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void err.push(a.join(" ")));
});
afterEach(() => vi.restoreAllMocks());

function tmp(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "bulwark-compile-"));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const BAD = `apiVersion: resilience.bulwark.dev/v1alpha1
kind: ResiliencePolicy
metadata: {name: checkout, namespace: shop}
spec:
  selector: {}
  upstreams:
    - name: payments
      host: payments
      port: 8080
      retry: {backoff: {base: 25ms, max: 10ms}}
      bogus: true
`;

/** Runs the command in-process; a CommandError becomes its exit code, as main.ts does. */
async function run(...argv: string[]): Promise<number> {
  try {
    return await command.run(argv);
  } catch (e) {
    if (e instanceof CommandError) {
      err.push(e.message);
      return e.exitCode;
    }
    throw e;
  }
}

describe("bulwark compile", () => {
  it("compiles a directory into one config per example pod, in the form the agent reads, exit 0", async () => {
    expect(await run("-f", examples)).toBe(0);
    const configs = parse(out.join("\n")) as Record<string, SidecarConfig>;
    expect(Object.keys(configs)).toContain("shop/checkout-to-payments-example");
    for (const config of Object.values(configs)) expect(parseSidecarConfig(config).ok).toBe(true);
    const payments = configs["shop/checkout-to-payments-example"]?.upstreams.find(
      (u) => u.name === "payments",
    );
    expect(payments).toMatchObject({ policy: "shop/checkout-to-payments", mode: "enforce", timeoutMs: 2000 });
    expect(err).toEqual([]);
  });

  it("-o json prints the map as JSON; several -f are read", async () => {
    const a = join(examples, "stale-cache-fallback.yaml");
    const b = join(examples, "http-client-retries-breaker.yaml");
    expect(await run("-f", a, "--filename", b, "-o", "json")).toBe(0);
    const configs = JSON.parse(out.join("\n")) as Record<string, SidecarConfig>;
    expect(Object.keys(configs).sort()).toEqual([
      "shop/checkout-to-payments-example",
      "shop/storefront-catalog-cache-example",
    ]);
  });

  it("invalid input: exit 2, one line per problem as <file>: <kind>/<name>: <path>: <message>, nothing on stdout", async () => {
    const file = tmp("bad.yaml", BAD);
    expect(await run("-f", file)).toBe(2);
    expect(out).toEqual([]);
    expect(err).toEqual([
      `${file}: ResiliencePolicy/checkout: spec.upstreams[0].retry.backoff.max: must be >= base (25ms)`,
      `${file}: ResiliencePolicy/checkout: spec.upstreams[0].bogus: unknown field`,
      "bulwark compile: 2 problem(s); nothing printed",
    ]);
  });

  it("one bad policy among good ones fails the whole run", async () => {
    const file = tmp("bad.yaml", BAD);
    expect(await run("-f", examples, "-f", file)).toBe(2);
    expect(out).toEqual([]);
  });

  it.each([
    [["-o", "xml", "-f", "x"], /-o must be yaml or json/],
    [[], /-f is required/],
    [["-f", "/nonexistent/policy.yaml"], /\/nonexistent\/policy\.yaml: cannot read: ENOENT/],
    [["-f", "x", "--pod", "no-slash"], /--pod must be NAMESPACE\/NAME/],
    [["--bogus"], /Unknown option '--bogus'/],
  ])("usage errors exit 2: %j", async (argv, message) => {
    expect(await run(...argv)).toBe(2);
    expect(err.join("\n")).toMatch(message);
  });

  it("a file with no policy in it exits 2", async () => {
    expect(await run("-f", tmp("empty.yaml", "# nothing\n"))).toBe(2);
    expect(err.join("\n")).toMatch(/no ResiliencePolicy found/);
  });

  it("compiles for the pods in --pods; --pod prints that one config, which the agent accepts", async () => {
    const pods = tmp(
      "pods.yaml",
      [
        "apiVersion: v1\nkind: Pod\nmetadata: {name: checkout-1, namespace: shop, labels: {app: checkout}}",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: cart-1, namespace: shop, labels: {app: cart}}",
      ].join("\n---\n"),
    );
    const policy = join(examples, "http-client-retries-breaker.yaml");
    expect(await run("-f", policy, "--pods", pods)).toBe(0);
    expect(Object.keys(parse(out.join("\n")) as object)).toEqual(["shop/checkout-1"]);
    out = [];
    expect(await run("-f", policy, "--pods", pods, "--pod", "shop/checkout-1")).toBe(0);
    const config = parse(out.join("\n")) as SidecarConfig;
    expect(parseSidecarConfig(config).ok).toBe(true);
    expect(config.pod).toEqual({ namespace: "shop", name: "checkout-1" });
    expect(await run("-f", policy, "--pods", pods, "--pod", "shop/cart-1")).toBe(2);
    expect(err.join("\n")).toContain("no policy selects pod shop/cart-1");
    const notPods = tmp("pods.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n");
    expect(await run("-f", policy, "--pods", notPods)).toBe(2);
    expect(err.join("\n")).toContain("document 1, item 1: not a Pod");
  });

  it("--help lists every flag", () => {
    for (const flag of ["-f, --filename", "--pods", "--pod", "-o, --output", "-h, --help"]) {
      expect(command.help).toContain(flag);
    }
    expect(command.help).toMatch(/^Usage: bulwark compile -f POLICY\.yaml/);
  });
});

describe("bulwark compile as a process", () => {
  const exec = promisify(execFile);
  const cli = (...args: string[]) =>
    exec(process.execPath, ["--import", "tsx", "operator/cli/main.ts", "compile", ...args], {
      cwd: root,
    }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );

  it("exits 0 on the examples, 2 on invalid input with the problem lines on stderr", async () => {
    const ok = await cli("-f", "examples/");
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("kind: SidecarConfig");

    const file = tmp("bad.yaml", BAD);
    const bad = await cli("-f", file);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe("");
    expect(bad.stderr).toContain(
      `${file}: ResiliencePolicy/checkout: spec.upstreams[0].retry.backoff.max: must be >= base (25ms)`,
    );
  });
});
