// scripts/audit.sh, the CI gate on production dependencies, decided on recorded `npm audit --json` reports
// (no registry needed): high and critical advisories fail unless a current exception names them; an expired
// or incomplete exception fails too; an audit that could not run fails unless told to warn.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const SCRIPT = resolve(import.meta.dirname, "../../scripts/audit.sh");
const dir = mkdtempSync(join(tmpdir(), "bulwark-audit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function run(
  report: unknown,
  exceptions: unknown[] = [],
  env: Record<string, string> = {},
): { code: number; out: string } {
  const reportFile = join(dir, `report-${++n}.json`);
  const exceptionsFile = join(dir, `exceptions-${n}.json`);
  writeFileSync(reportFile, typeof report === "string" ? report : JSON.stringify(report));
  writeFileSync(exceptionsFile, JSON.stringify(exceptions));
  const r = spawnSync("bash", [SCRIPT], {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      AUDIT_JSON_FILE: reportFile,
      AUDIT_EXCEPTIONS: exceptionsFile,
      AUDIT_TODAY: "2026-11-28",
      ...env,
    },
    encoding: "utf8",
  });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

const advisory = (severity: string) => ({
  source: 1234,
  name: "yaml",
  dependency: "yaml",
  title: "Uncontrolled resource consumption",
  url: "https://github.com/advisories/GHSA-aaaa-bbbb-cccc",
  severity,
  range: "<2.2.2",
});
const reportWith = (severity: string) => ({
  auditReportVersion: 2,
  vulnerabilities: { yaml: { name: "yaml", severity, via: [advisory(severity)] } },
  metadata: { vulnerabilities: { [severity]: 1 } },
});
const clean = { auditReportVersion: 2, vulnerabilities: {}, metadata: { vulnerabilities: {} } };
const exception = (expires: string) => ({
  advisory: "GHSA-aaaa-bbbb-cccc",
  package: "yaml",
  reason: "only reachable through --pods files the user wrote",
  expires,
});

describe("scripts/audit.sh", () => {
  it("passes a clean report and one with only low or moderate findings", () => {
    expect(run(clean).code).toBe(0);
    expect(run(reportWith("moderate")).code).toBe(0);
  });

  it("fails on a high or critical advisory, naming it and the package", () => {
    for (const severity of ["high", "critical"]) {
      const r = run(reportWith(severity));
      expect(r.code, severity).toBe(1);
      expect(r.out).toContain(`${severity} GHSA-aaaa-bbbb-cccc in yaml`);
    }
  });

  it("passes an advisory with a current exception, and says so with the reason", () => {
    const r = run(reportWith("high"), [exception("2026-12-31")]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("excepted until 2026-12-31: high GHSA-aaaa-bbbb-cccc in yaml");
  });

  it("fails when the exception expired, or lacks a reason or an expiry", () => {
    expect(run(reportWith("high"), [exception("2026-11-27")]).out).toContain("expired on 2026-11-27");
    expect(run(reportWith("high"), [exception("2026-11-27")]).code).toBe(1);
    expect(run(clean, [{ ...exception("2026-12-31"), reason: "" }]).code).toBe(1);
    expect(run(clean, [{ ...exception("next year") }]).code).toBe(1);
  });

  it("fails when the audit could not run (offline, a mirror without the endpoint), unless told to warn", () => {
    const error = {
      message: "405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk",
    };
    const r = run(error);
    expect(r.code).toBe(1);
    expect(r.out).toContain("npm audit could not run: 405");
    expect(run(error, [], { AUDIT_UNAVAILABLE: "warn" }).code).toBe(0);
    expect(run("not json").code).toBe(1);
  });
});
