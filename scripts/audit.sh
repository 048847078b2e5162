#!/usr/bin/env bash
# Fails when a production dependency (npm audit --omit=dev) has a high or critical advisory that has no
# current exception in scripts/audit-exceptions.json. docs/security.md explains the check and how to record
# an exception (advisory id, reason, expiry). An expired exception fails the check like the advisory would.
#
# Environment:
#   AUDIT_EXCEPTIONS   exceptions file (default scripts/audit-exceptions.json)
#   AUDIT_JSON_FILE    read this `npm audit --json` report instead of running npm (tests)
#   AUDIT_UNAVAILABLE  what to do when the registry cannot answer an audit (offline, a mirror without the
#                      audit endpoint): fail (default) or warn
#   AUDIT_TODAY        the date expiries are compared with, YYYY-MM-DD (default today, UTC; tests)
set -euo pipefail
cd "$(dirname "$0")/.."

exceptions="${AUDIT_EXCEPTIONS:-scripts/audit-exceptions.json}"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT

if [ -n "${AUDIT_JSON_FILE:-}" ]; then
  cp "$AUDIT_JSON_FILE" "$report"
else
  # npm audit exits 1 when it finds anything; the verdict is ours, from the JSON.
  npm audit --omit=dev --audit-level=high --json >"$report" 2>/dev/null || true
fi

AUDIT_REPORT="$report" AUDIT_EXCEPTIONS="$exceptions" node --input-type=module -e '
import { existsSync, readFileSync } from "node:fs";
const report = (() => {
  try { return JSON.parse(readFileSync(process.env.AUDIT_REPORT, "utf8")); } catch { return undefined; }
})();
const today = process.env.AUDIT_TODAY ?? new Date().toISOString().slice(0, 10);
if (!report || typeof report.vulnerabilities !== "object" || report.vulnerabilities === null) {
  const why = report?.error?.summary || report?.message || "no audit report";
  const warn = process.env.AUDIT_UNAVAILABLE === "warn";
  console.error(`audit: ${warn ? "WARNING: " : ""}npm audit could not run: ${why}`);
  process.exit(warn ? 0 : 1);
}
const file = process.env.AUDIT_EXCEPTIONS;
const exceptions = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : [];
const bad = [];
for (const e of exceptions) {
  for (const field of ["advisory", "package", "reason", "expires"])
    if (typeof e[field] !== "string" || e[field] === "") bad.push(`exception ${JSON.stringify(e)}: ${field} is required`);
  if (typeof e.expires === "string" && !/^\d{4}-\d{2}-\d{2}$/.test(e.expires)) bad.push(`exception ${e.advisory}: expires must be YYYY-MM-DD`);
}
const current = exceptions.filter((e) => typeof e.expires === "string" && e.expires >= today);
for (const e of exceptions) if (typeof e.expires === "string" && e.expires < today)
  bad.push(`exception for ${e.advisory} (${e.package}) expired on ${e.expires}: review it, then fix or renew`);

// Every advisory behind a high or critical finding: the objects in `via` (strings point at another package).
const found = new Map();
for (const [pkg, v] of Object.entries(report.vulnerabilities)) {
  for (const via of v.via ?? []) {
    if (typeof via !== "object" || !["high", "critical"].includes(via.severity)) continue;
    const id = String(via.url ?? via.source ?? "").split("/").pop();
    found.set(`${id} ${via.name ?? pkg}`, { id, pkg: via.name ?? pkg, severity: via.severity, title: via.title ?? "", url: via.url ?? "", range: via.range ?? "" });
  }
}
let failed = bad.length > 0;
for (const line of bad) console.error(`audit: ${line}`);
for (const f of found.values()) {
  const ex = current.find((e) => e.advisory === f.id && e.package === f.pkg);
  if (ex) {
    console.log(`audit: excepted until ${ex.expires}: ${f.severity} ${f.id} in ${f.pkg}: ${ex.reason}`);
    continue;
  }
  failed = true;
  console.error(`audit: ${f.severity} ${f.id} in ${f.pkg} ${f.range}: ${f.title} ${f.url}`);
}
if (failed) {
  console.error("audit: FAILED (docs/security.md: fix by upgrading, or record an exception with a reason and an expiry)");
  process.exit(1);
}
const counts = report.metadata?.vulnerabilities ?? {};
console.log(`audit: ok: no high or critical advisories in production dependencies without a current exception (all severities: ${JSON.stringify(counts)})`);
'
