// The chart renders, lints and rejects bad values, without a cluster: helm lint with the default and several
// non-default values files, values.schema.json errors, golden renders (UPDATE_GOLDEN=1 rewrites them), the
// README generated from values.yaml, the CRD identical to crds/, appVersion = package.json version, and the
// security and RBAC properties the issue asks for read off the rendered objects.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, parse } from "yaml";
import { CHART_DIR, HELM, ROOT, ensureTools, run, template } from "./helm.js";
import { AGENT_HELP } from "../../operator/agent/settings.js";
import { command as operatorCommand } from "../../operator/cli/commands/operator.js";
import { parseInjectorConfig } from "../../operator/webhook/injector-config.js";
import { agentContainer } from "../../operator/webhook/injector.js";
import { expectedReadme } from "./values-doc.js";

const VALUES = `${ROOT}test/charts/values`;
const GOLDEN = `${ROOT}test/charts/golden`;
const valueFiles = readdirSync(VALUES).filter((f) => f.endsWith(".yaml"));

type K8s = { kind: string; metadata: { name: string }; [k: string]: unknown };
function objects(yamlText: string): K8s[] {
  return parseAllDocuments(yamlText)
    .map((d) => d.toJS() as K8s | null)
    .filter((o): o is K8s => o !== null);
}
const find = (objs: K8s[], kind: string) => objs.filter((o) => o.kind === kind);

beforeAll(() => ensureTools());

describe("helm lint", () => {
  it("passes with the default values", () => {
    const r = run(HELM, ["lint", CHART_DIR, "--strict"]);
    expect(r.stderr + r.stdout).toContain("0 chart(s) failed");
    expect(r.status).toBe(0);
  });
  it.each(valueFiles)("passes with values/%s", (file) => {
    const r = run(HELM, ["lint", CHART_DIR, "--strict", "-f", `${VALUES}/${file}`]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });
});

describe("values.schema.json", () => {
  const bad: [string[], RegExp][] = [
    [["--set", "replicaCount=0"], /replicaCount: Must be greater than or equal to 1/],
    [["--set", "webhook.failurePolicy=Sometimes"], /webhook.failurePolicy must be one of the following: "Fail", "Ignore"/],
    [["--set", "webhook.timeoutSeconds=60"], /webhook.timeoutSeconds: Must be less than or equal to 30/],
    [["--set", "leaderElection.leaseDuration=15"], /leaderElection.leaseDuration: Invalid type. Expected: string/],
    [["--set", "logLevel=verbose"], /logLevel must be one of the following/],
    [["--set", "replicas=3"], /Additional property replicas is not allowed/],
    [["--set", "agent.inboundPort=70000"], /agent.inboundPort: Must be less than or equal to 65535/],
    [["--set", "image.digest=latest"], /image.digest: Does not match pattern/],
    [["--set", "podDisruptionBudget.minAvailable=half"], /podDisruptionBudget.minAvailable/],
  ];
  it.each(bad)("rejects %j", (args, message) => {
    const r = run(HELM, ["template", "x", CHART_DIR, ...args]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });
});

describe("golden renders", () => {
  const cases: [string, string[]][] = [
    ["default", []],
    // everything-on wraps issue 9's dashboard and rules files, which change on their own: checked by content below.
    ...valueFiles
      .filter((f) => f !== "everything-on.yaml")
      .map((f): [string, string[]] => [f.replace(/\.yaml$/, ""), ["-f", `${VALUES}/${f}`]]),
  ];
  it.each(cases)("%s matches test/charts/golden", (name, args) => {
    const out = template(args);
    const path = `${GOLDEN}/${name}.yaml`;
    if (process.env.UPDATE_GOLDEN) writeFileSync(path, out);
    expect(out, `run UPDATE_GOLDEN=1 npx vitest run test/charts/chart.test.ts`).toBe(readFileSync(path, "utf8"));
  });
});

describe("generated and copied files", () => {
  it("README.md is generated from values.yaml comments", () => {
    expect(readFileSync(`${CHART_DIR}/README.md`, "utf8"), "run npx tsx test/charts/values-doc.ts --write").toBe(
      expectedReadme(),
    );
  });
  it("the chart's CRD is the top-level one, byte for byte", () => {
    for (const f of readdirSync(`${ROOT}crds`))
      expect(readFileSync(`${CHART_DIR}/crds/${f}`, "utf8")).toBe(readFileSync(`${ROOT}crds/${f}`, "utf8"));
    expect(readdirSync(`${CHART_DIR}/crds`).sort()).toEqual(readdirSync(`${ROOT}crds`).sort());
  });
  it("appVersion is the package version", () => {
    const chart = parse(readFileSync(`${CHART_DIR}/Chart.yaml`, "utf8")) as { appVersion: string };
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as { version: string };
    expect(chart.appVersion).toBe(pkg.version);
  });
});

describe("rendered objects", () => {
  const def = objects(template());
  const deployment = find(def, "Deployment")[0] as unknown as {
    spec: { replicas: number; template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[] } } };
  };
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0] as Record<string, unknown> & { args: string[] };

  it("runs 2 replicas with leader election on", () => {
    expect(deployment.spec.replicas).toBe(2);
    expect(container.args).toContain("--leader-elect=true");
    expect(pod.topologySpreadConstraints).toHaveLength(2);
  });
  it("is hardened: non-root, read-only root fs, no capabilities, RuntimeDefault seccomp, resources", () => {
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    expect(container.resources).toMatchObject({ requests: { cpu: "100m" }, limits: { memory: "512Mi" } });
    expect(container.livenessProbe).toMatchObject({ httpGet: { path: "/healthz" } });
    expect(container.readinessProbe).toMatchObject({ httpGet: { path: "/readyz" } });
  });
  it("has no RBAC wildcards, and names the Lease and the Secret", () => {
    for (const role of [...find(def, "ClusterRole"), ...find(def, "Role")]) {
      for (const rule of (role as unknown as { rules: Record<string, string[]>[] }).rules) {
        for (const k of ["verbs", "resources", "apiGroups"]) expect(rule[k]).not.toContain("*");
        for (const v of ["get", "update", "patch"])
          if (rule.resources?.some((r) => r === "leases" || r === "secrets") && rule.verbs?.includes(v))
            expect(rule.resourceNames).toHaveLength(1);
      }
    }
  });
  it("gates the optional objects on values", () => {
    const kinds = (o: K8s[]) => new Set(o.map((x) => x.kind));
    expect(kinds(def)).not.toContain("NetworkPolicy");
    expect(kinds(def)).not.toContain("ServiceMonitor");
    const all = objects(template(["-f", `${VALUES}/everything-on.yaml`]));
    for (const k of ["NetworkPolicy", "ServiceMonitor", "PodMonitor", "PrometheusRule"]) expect(kinds(all)).toContain(k);
    const dash = find(all, "ConfigMap").filter((c) => (c as unknown as { metadata: { labels: Record<string, string> } }).metadata.labels.grafana_dashboard === "1");
    expect(dash).toHaveLength(1);
    const rule = find(all, "PrometheusRule")[0] as unknown as { spec: { groups: unknown[] } };
    expect(rule.spec.groups.length).toBeGreaterThan(0);
    // The wrapped files, unchanged: the rules' groups, the dashboard JSON byte for byte.
    const rulesFile = parse(readFileSync(`${CHART_DIR}/files/prometheus-rules.yaml`, "utf8")) as { groups: unknown[] };
    expect(rule.spec.groups).toEqual(rulesFile.groups);
    const data = (dash[0] as unknown as { data: Record<string, string> }).data;
    expect(data["bulwark.json"]).toBe(readFileSync(`${CHART_DIR}/dashboards/bulwark.json`, "utf8").replace(/\n$/, ""));
    const minimal = objects(template(["-f", `${VALUES}/minimal.yaml`]));
    expect(kinds(minimal)).not.toContain("MutatingWebhookConfiguration");
    expect(kinds(minimal)).not.toContain("Role");
    expect(kinds(minimal)).not.toContain("ServiceAccount");
  });
  it("with cert-manager: a Certificate, CA injection annotations, and no Secret or caBundle rights", () => {
    const cm = objects(template(["-f", `${VALUES}/cert-manager.yaml`]));
    expect(find(cm, "Certificate")).toHaveLength(1);
    expect(find(cm, "Issuer")).toHaveLength(0);
    const mwc = find(cm, "MutatingWebhookConfiguration")[0] as unknown as { metadata: { annotations: Record<string, string> } };
    expect(mwc.metadata.annotations["cert-manager.io/inject-ca-from"]).toBe("bulwark-system/bulwark-webhook");
    const text = JSON.stringify(cm.filter((o) => o.kind.endsWith("Role")));
    expect(text).not.toContain("secrets");
    expect(text).not.toContain("webhookconfigurations");
  });
});

describe("wiring: what the chart and the injector pass is what the binaries read", () => {
  it.each(["default", ...valueFiles])("every operator flag in the %s Deployment is a `bulwark operator` flag", (file) => {
    const objs = objects(template(file === "default" ? [] : ["-f", `${VALUES}/${file}`]));
    const dep = find(objs, "Deployment")[0] as unknown as {
      spec: { template: { spec: { containers: { args: string[] }[] } } };
    };
    const args = dep.spec.template.spec.containers[0]?.args ?? [];
    expect(args[0]).toBe("operator");
    for (const a of args.slice(1)) {
      const flag = /^(--[a-z-]+)=/.exec(a)?.[1];
      expect(flag, a).toBeDefined();
      expect(operatorCommand.help).toMatch(new RegExp(`\\s${flag ?? ""}[\\s=]`));
    }
  });

  it("the injector config the chart renders parses, and every env var the injector sets is one the agent reads", () => {
    const cm = find(objects(template()), "ConfigMap").find((c) => c.metadata.name === "bulwark-injector") as unknown as {
      data: Record<string, string>;
    };
    const config = parseInjectorConfig(JSON.parse(cm.data["config.json"] ?? ""));
    const agent = agentContainer({}, config, true) as { env: { name: string }[] };
    for (const e of agent.env) expect(AGENT_HELP).toContain(e.name);
  });
});
