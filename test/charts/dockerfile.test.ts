// The image, linted without Docker: hadolint is not packaged in Debian 12, so this is its checklist for our
// Dockerfile, each rule named after the hadolint rule (or issue 8 requirement) it stands for. `make image`
// builds the image where a Docker engine exists.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ROOT } from "./helm.js";

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** Dockerfile instructions with continuation lines joined and comments dropped; `stage` counts FROMs. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  const joined = text.replace(/\\\n/g, " ").split("\n");
  for (const raw of joined) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = (m[1] ?? "").toUpperCase();
    if (op === "FROM") stage++;
    out.push({ op, args: m[2] ?? "", stage });
  }
  return out;
}

const text = readFileSync(`${ROOT}Dockerfile`, "utf8");
const ins = instructions(text);
const froms = ins.filter((i) => i.op === "FROM");
const last = froms.length - 1;
const final = ins.filter((i) => i.stage === last);
const args = Object.fromEntries(
  ins.filter((i) => i.op === "ARG").map((i) => i.args.split("=") as [string, string]),
);
const expand = (s: string) => s.replace(/\$\{(\w+)\}/g, (_m, k: string) => args[k] ?? "");
const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as {
  engines: { node: string };
  bin: { bulwark: string };
};

describe("Dockerfile checklist", () => {
  it("is multi-stage: a build stage with dev dependencies, a run stage with production ones only", () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const build = ins.filter((i) => i.stage < last);
    expect(build.some((i) => i.op === "RUN" && /npm ci\b/.test(i.args))).toBe(true); // DL3016-ish: lockfile install
    expect(build.some((i) => i.op === "RUN" && /npm prune --omit=dev/.test(i.args))).toBe(true);
    expect(final.some((i) => i.op === "RUN")).toBe(false); // nothing installed or run in the final stage
  });

  it("pins every base image to a tag (DL3006, DL3007) and runs a Node LTS that package.json's engines allows", () => {
    for (const f of froms) {
      const image = expand(f.args.split(/\s+/)[0] ?? "");
      expect(image, f.args).toMatch(/:[\w.-]+$/);
      expect(image).not.toMatch(/:latest$/);
    }
    const major = Number(args.NODE_MAJOR);
    expect(major % 2, "an even (LTS) major").toBe(0);
    const min = Number(/>=\s*(\d+)/.exec(pkg.engines.node)?.[1]);
    expect(major).toBeGreaterThanOrEqual(min);
    expect(expand(froms[0]?.args ?? "")).toContain(`node:${major}-`);
    expect(expand(froms[last]?.args ?? "")).toBe(`gcr.io/distroless/nodejs${major}-debian12:nonroot`);
  });

  it("runs as a non-root numeric user in the final stage (DL3002)", () => {
    const user = final.filter((i) => i.op === "USER").at(-1)?.args ?? "";
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(user.split(":")[0]).not.toBe("0");
  });

  it("uses exec-form ENTRYPOINT/CMD (DL3025) with bulwark as the entrypoint for operator and agent", () => {
    for (const i of final.filter((x) => x.op === "ENTRYPOINT" || x.op === "CMD"))
      expect(() => JSON.parse(i.args) as unknown, i.args).not.toThrow();
    const entry = JSON.parse(final.find((i) => i.op === "ENTRYPOINT")?.args ?? "[]") as string[];
    expect(entry.at(-1)).toBe(`/app/${pkg.bin.bulwark}`);
    expect(JSON.parse(final.find((i) => i.op === "CMD")?.args ?? "[]")).toEqual(["operator"]);
  });

  it("uses COPY not ADD (DL3020), absolute WORKDIRs (DL3000), no sudo (DL3004), no apt in the image", () => {
    expect(ins.some((i) => i.op === "ADD")).toBe(false);
    for (const w of ins.filter((i) => i.op === "WORKDIR")) expect(w.args).toMatch(/^\//);
    expect(text).not.toMatch(/\bsudo\b/);
    expect(final.some((i) => /apt-get|apk /.test(i.args))).toBe(false);
  });

  it("copies only what runs into the final stage (no whole build context)", () => {
    const copies = final.filter((i) => i.op === "COPY").map((i) => i.args);
    for (const c of copies) expect(c).toMatch(/--from=build/);
    expect(copies.join(" ")).not.toMatch(/\s\.\s/);
  });

  it("exposes the contract's ports", () => {
    const ports = final.find((i) => i.op === "EXPOSE")?.args.split(/\s+/).map(Number).sort();
    expect(ports).toEqual([8081, 9443, 9464, 15000, 15001, 15006, 15010].sort());
  });

  it(".dockerignore keeps node_modules, .git, dist and tests out of the context", () => {
    const ignored = readFileSync(`${ROOT}.dockerignore`, "utf8").split("\n").map((l) => l.trim());
    for (const p of ["node_modules", ".git", "dist", "test", ".bulwark"]) expect(ignored).toContain(p);
  });

  it("the chart's default image is the one `make image` builds", () => {
    const values = parse(readFileSync(`${ROOT}charts/bulwark/values.yaml`, "utf8")) as { image: { repository: string } };
    const makefile = readFileSync(`${ROOT}Makefile`, "utf8");
    expect(makefile).toContain(`IMAGE ?= ${values.image.repository}:`);
  });
});
