// Conformance with the real, pinned kubectl (v1.32): what a user types against `bulwark dev-cluster`.
import { spawn } from "node:child_process";
import { chmodSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURES, KUBECTL, ROOT, startHarness, until, writeTemp, type Harness } from "./helpers.js";

let h: Harness;
const CRD = join(FIXTURES, "widgets-crd.yaml");

const widget = (name: string, size: number, extra = "") =>
  `apiVersion: example.bulwark.dev/v1\nkind: Widget\nmetadata:\n  name: ${name}\n  labels: {app: demo}\nspec:\n  size: ${size}\n${extra}`;

beforeAll(async () => {
  h = await startHarness();
  const applied = await h.kubectl(["apply", "-f", CRD]);
  expect(applied.stderr).toBe("");
  expect(applied.stdout).toContain(
    "customresourcedefinition.apiextensions.k8s.io/widgets.example.bulwark.dev created",
  );
  // https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#create-a-customresourcedefinition
  const waited = await h.kubectl([
    "wait",
    "--for=condition=Established",
    "crd/widgets.example.bulwark.dev",
    "--timeout=10s",
  ]);
  expect(waited.stdout).toContain("condition met");
});

afterAll(async () => {
  await h?.stop();
});

describe("kubectl against the dev cluster", () => {
  it("reports a real 1.32 server version (the PATH kubectl is a dispatcher keyed on it)", async () => {
    const r = await h.kubectl(["version", "-o", "json"]);
    expect(JSON.parse(r.stdout).serverVersion).toMatchObject({ major: "1", minor: "32" });
  });

  it("rejects a request without a valid token with 401", async () => {
    const r = await h.kubectl(["get", "widgets", "--token=not-a-token"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/You must be logged in to the server/);
  });

  it("client-side apply creates then configures, and get prints the printer columns", async () => {
    const file = writeTemp(h.dir, "w-csa.yaml", widget("csa", 3));
    let r = await h.kubectl(["apply", "-f", file]);
    expect(r.stdout.trim()).toBe("widget.example.bulwark.dev/csa created");
    writeTemp(h.dir, "w-csa.yaml", widget("csa", 4));
    r = await h.kubectl(["apply", "-f", file]);
    expect(r.stdout.trim()).toBe("widget.example.bulwark.dev/csa configured");
    r = await h.kubectl(["apply", "-f", file]);
    expect(r.stdout.trim()).toBe("widget.example.bulwark.dev/csa unchanged");
    r = await h.kubectl(["get", "wd", "csa"]);
    const [header, row] = r.stdout.trim().split("\n");
    expect(header?.split(/\s+/)).toEqual(["NAME", "SIZE", "COLOR", "READY", "AGE"]);
    // the schema default (color: red) was applied on create
    expect(row?.split(/\s+/).slice(0, 3)).toEqual(["csa", "4", "red"]);
  });

  it("server-side apply creates, records managedFields, and reports conflicts unless forced", async () => {
    const file = writeTemp(h.dir, "w-ssa.yaml", widget("ssa", 5));
    let r = await h.kubectl(["apply", "--server-side", "-f", file]);
    expect(r.stdout.trim()).toBe("widget.example.bulwark.dev/ssa serverside-applied");
    r = await h.kubectl(["get", "wd", "ssa", "-o", "yaml", "--show-managed-fields"]);
    expect(r.stdout).toContain("manager: kubectl");
    expect(r.stdout).toContain("operation: Apply");
    expect(r.stdout).toContain("f:size: {}");
    writeTemp(h.dir, "w-ssa2.yaml", widget("ssa", 6));
    r = await h.kubectl([
      "apply",
      "--server-side",
      "--field-manager=other",
      "-f",
      join(h.dir, "w-ssa2.yaml"),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('conflict with "kubectl"');
    expect(r.stderr).toContain(".spec.size");
    r = await h.kubectl([
      "apply",
      "--server-side",
      "--field-manager=other",
      "--force-conflicts",
      "-f",
      join(h.dir, "w-ssa2.yaml"),
    ]);
    expect(r.code).toBe(0);
    r = await h.kubectl(["get", "wd", "ssa", "-o", "jsonpath={.spec.size}"]);
    expect(r.stdout).toBe("6");
  });

  it("get -o yaml returns the stored object with server-set metadata", async () => {
    await h.kubectl(["apply", "-f", writeTemp(h.dir, "w-y.yaml", widget("yaml", 2))]);
    const r = await h.kubectl(["get", "wd", "yaml", "-o", "yaml"]);
    expect(r.stdout).toMatch(/uid: [0-9a-f-]{36}/);
    expect(r.stdout).toMatch(/resourceVersion: "\d+"/);
    expect(r.stdout).toContain("generation: 1");
    expect(r.stdout).toContain("color: red");
  });

  it("get -w prints a row when the object changes", async () => {
    await h.kubectl(["apply", "-f", writeTemp(h.dir, "w-w.yaml", widget("watched", 1))]);
    const child = spawn(KUBECTL, ["get", "wd", "watched", "-w"], {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: h.dir,
        KUBECONFIG: h.kubeconfig,
        KUBECACHEDIR: join(h.dir, "cache"),
      },
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await until("initial row", () => (/watched\s+1\s/.test(out) ? true : undefined));
      await h.kubectl(["patch", "wd", "watched", "--type=merge", "-p", '{"spec":{"size":77}}']);
      await until("updated row", () => (/watched\s+77\s/.test(out) ? true : undefined));
      // rows arrive under the first header (one-row Tables without column definitions)
      expect(out.match(/NAME/g)?.length).toBe(1);
    } finally {
      child.kill();
    }
  });

  it("describe lists events about the object, written through core/v1 and events.k8s.io/v1", async () => {
    await h.kubectl(["apply", "-f", writeTemp(h.dir, "w-d.yaml", widget("described", 2))]);
    const obj = JSON.parse((await h.kubectl(["get", "wd", "described", "-o", "json"])).stdout) as {
      metadata: { uid: string };
    };
    const involved = {
      apiVersion: "example.bulwark.dev/v1",
      kind: "Widget",
      name: "described",
      namespace: "default",
      uid: obj.metadata.uid,
    };
    const core = await h.request("POST", "/api/v1/namespaces/default/events", {
      body: {
        metadata: { name: "described.core" },
        involvedObject: involved,
        reason: "CoreReason",
        message: "written through core/v1",
        type: "Normal",
        count: 1,
        firstTimestamp: new Date().toISOString().replace(/\.\d+Z/, "Z"),
        lastTimestamp: new Date().toISOString().replace(/\.\d+Z/, "Z"),
        source: { component: "test" },
      },
    });
    expect(core.status).toBe(201);
    const v1 = await h.request("POST", "/apis/events.k8s.io/v1/namespaces/default/events", {
      body: {
        metadata: { name: "described.v1" },
        regarding: involved,
        reason: "V1Reason",
        note: "written through events.k8s.io",
        type: "Normal",
        action: "Sync",
        reportingController: "bulwark.dev/test",
        reportingInstance: "test-1",
        eventTime: new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000Z"),
      },
    });
    expect(v1.status).toBe(201);
    const r = await h.kubectl(["describe", "wd", "described"]);
    expect(r.stdout).toMatch(/Events:/);
    expect(r.stdout).toMatch(/Normal\s+CoreReason.*written through core\/v1/);
    expect(r.stdout).toMatch(/Normal\s+V1Reason.*written through events.k8s.io/);
  });

  it("explain shows the CRD schema's descriptions", async () => {
    const r = await h.kubectl(["explain", "widget.spec.size"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("How big, from 1 to 100.");
  });

  it("edit through KUBE_EDITOR updates the object", async () => {
    await h.kubectl(["apply", "-f", writeTemp(h.dir, "w-e.yaml", widget("edited", 3))]);
    const editor = writeTemp(h.dir, "editor.sh", "#!/bin/sh\nsed -i 's/size: 3/size: 33/' \"$1\"\n");
    chmodSync(editor, 0o755);
    const r = await h.kubectl(["edit", "wd", "edited"], { env: { KUBE_EDITOR: editor } });
    expect(r.stdout.trim()).toBe("widget.example.bulwark.dev/edited edited");
    expect((await h.kubectl(["get", "wd", "edited", "-o", "jsonpath={.spec.size}"])).stdout).toBe("33");
  });

  it("patch --type merge and --type json; strategic merge on a custom resource is 415", async () => {
    await h.kubectl(["apply", "-f", writeTemp(h.dir, "w-p.yaml", widget("patched", 3))]);
    let r = await h.kubectl(["patch", "wd", "patched", "--type", "merge", "-p", '{"spec":{"color":"blue"}}']);
    expect(r.stdout.trim()).toBe("widget.example.bulwark.dev/patched patched");
    r = await h.kubectl([
      "patch",
      "wd",
      "patched",
      "--type",
      "json",
      "-p",
      '[{"op":"replace","path":"/spec/size","value":9}]',
    ]);
    expect(r.code).toBe(0);
    r = await h.kubectl(["get", "wd", "patched", "-o", "jsonpath={.spec.size} {.spec.color}"]);
    expect(r.stdout).toBe("9 blue");
    // kubectl sends strategic merge patch by default; custom resources do not support it
    // (https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/#notes-on-the-strategic-merge-patch)
    r = await h.kubectl(["patch", "wd", "patched", "-p", '{"spec":{"size":10}}']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("application/strategic-merge-patch+json is not supported");
  });

  it("apply of a built-in kind updates it with a strategic merge patch", async () => {
    const cm = (v: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: "${v}"\n`;
    const file = writeTemp(h.dir, "cm.yaml", cm("1"));
    expect((await h.kubectl(["apply", "-f", file])).stdout.trim()).toBe("configmap/cfg created");
    writeTemp(h.dir, "cm.yaml", cm("2"));
    expect((await h.kubectl(["apply", "-f", file])).stdout.trim()).toBe("configmap/cfg configured");
    const r = await h.kubectl(["get", "cm", "cfg"]);
    expect(r.stdout).toMatch(/NAME\s+DATA\s+AGE\ncfg\s+1\s/);
  });

  it("create (protobuf bodies), scale and auth subcommands work on built-in kinds", async () => {
    expect((await h.kubectl(["create", "configmap", "pb", "--from-literal=a=b"])).stdout.trim()).toBe(
      "configmap/pb created",
    );
    expect((await h.kubectl(["get", "cm", "pb", "-o", "jsonpath={.data.a}"])).stdout).toBe("b");
    const dep =
      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: nginx}]}\n";
    expect((await h.kubectl(["apply", "-f", "-"], { input: dep })).code).toBe(0);
    expect((await h.kubectl(["scale", "deployment", "web", "--replicas=3"])).stdout.trim()).toBe(
      "deployment.apps/web scaled",
    );
    expect((await h.kubectl(["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])).stdout).toBe("3");
    expect(
      (await h.kubectl(["create", "deployment", "made", "--image=nginx:1", "--replicas=0", "--port=8080"]))
        .code,
    ).toBe(0);
    const made = JSON.parse((await h.kubectl(["get", "deploy", "made", "-o", "json"])).stdout) as {
      spec: Record<string, unknown>;
    };
    expect(made.spec).toEqual({
      replicas: 0,
      selector: { matchLabels: { app: "made" } },
      template: {
        metadata: { labels: { app: "made" } },
        spec: { containers: [{ name: "nginx", image: "nginx:1", ports: [{ containerPort: 8080 }] }] },
      },
    });
    expect((await h.kubectl(["expose", "deployment", "made", "--port=80", "--target-port=8080"])).code).toBe(
      0,
    );
    expect(
      (await h.kubectl(["get", "svc", "made", "-o", "jsonpath={.spec.ports[0].targetPort}"])).stdout,
    ).toBe("8080");
    expect((await h.kubectl(["auth", "can-i", "create", "pods"])).stdout.trim()).toBe("yes");
    expect((await h.kubectl(["auth", "whoami"])).stdout).toContain("bulwark-admin");
  });

  it("delete with a finalizer keeps the object until the finalizer is removed", async () => {
    await h.kubectl(["apply", "-f", writeTemp(h.dir, "w-f.yaml", widget("finalized", 3))]);
    await h.kubectl([
      "patch",
      "wd",
      "finalized",
      "--type=merge",
      "-p",
      '{"metadata":{"finalizers":["example.bulwark.dev/hold"]}}',
    ]);
    let r = await h.kubectl(["delete", "wd", "finalized", "--wait=false"]);
    expect(r.stdout.trim()).toBe('widget.example.bulwark.dev "finalized" deleted');
    r = await h.kubectl(["get", "wd", "finalized", "-o", "jsonpath={.metadata.deletionTimestamp}"]);
    expect(r.stdout).toMatch(/^\d{4}-\d\d-\d\dT/);
    const waiter = h.kubectl(["wait", "--for=delete", "wd/finalized", "--timeout=20s"]);
    await h.kubectl(["patch", "wd", "finalized", "--type=merge", "-p", '{"metadata":{"finalizers":null}}']);
    expect((await waiter).code).toBe(0);
    r = await h.kubectl(["get", "wd", "finalized"]);
    expect(r.stderr).toContain('widgets.example.bulwark.dev "finalized" not found');
  });

  it("rejects invalid objects naming the field", async () => {
    let r = await h.kubectl([
      "apply",
      "-f",
      writeTemp(h.dir, "bad.yaml", widget("bad", 500, "  color: pink\n")),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("spec.size");
    expect(r.stderr).toContain("spec.color");
    r = await h.kubectl(["apply", "-f", writeTemp(h.dir, "bad2.yaml", widget("bad", 5, "  colour: pink\n"))]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown field "spec.colour"');
    r = await h.kubectl([
      "apply",
      "-f",
      writeTemp(
        h.dir,
        "bad3.yaml",
        "apiVersion: example.bulwark.dev/v1\nkind: Widget\nmetadata:\n  name: bad\nspec: {}\n",
      ),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("spec.size: Required value");
  });

  it("server-side apply takes over from client-side apply without conflicts (https://kubernetes.io/docs/reference/using-api/server-side-apply/#upgrading-from-client-side-apply-to-server-side-apply)", async () => {
    const file = writeTemp(h.dir, "w-mig.yaml", widget("migrated", 4));
    expect((await h.kubectl(["apply", "-f", file])).code).toBe(0);
    const r = await h.kubectl(["apply", "--server-side", "-f", file]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("widget.example.bulwark.dev/migrated serverside-applied");
    writeTemp(h.dir, "w-mig.yaml", widget("migrated", 8));
    expect((await h.kubectl(["apply", "--server-side", "-f", file])).code).toBe(0);
    expect((await h.kubectl(["get", "wd", "migrated", "-o", "jsonpath={.spec.size}"])).stdout).toBe("8");
  });

  it("wait --for=condition=Ready sees a status written through the status subresource", async () => {
    await h.kubectl(["apply", "-f", writeTemp(h.dir, "w-r.yaml", widget("ready", 2))]);
    const waiter = h.kubectl(["wait", "--for=condition=Ready", "wd/ready", "--timeout=20s"]);
    const status = {
      status: {
        conditions: [
          {
            type: "Ready",
            status: "True",
            reason: "Done",
            message: "ok",
            lastTransitionTime: "2026-01-01T00:00:00Z",
          },
        ],
      },
    };
    const p = await h.kubectl([
      "patch",
      "wd",
      "ready",
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify(status),
    ]);
    expect(p.code).toBe(0);
    const w = await waiter;
    expect(w.stdout).toContain("condition met");
    const g = await h.kubectl(["get", "wd", "ready"]);
    expect(g.stdout).toMatch(/ready\s+2\s+red\s+True\s/);
  });

  it("deleting a CRD removes its objects and its type", async () => {
    const crd = (await h.kubectl(["get", "crd", "widgets.example.bulwark.dev", "-o", "json"])).stdout
      .replace(/widgets/g, "gadgets")
      .replace(/"Widget"/g, '"Gadget"')
      .replace(/"widget"/g, '"gadget"')
      .replace(/"wd"/g, '"gd"');
    const parsed = JSON.parse(crd) as { metadata: Record<string, unknown>; status?: unknown };
    parsed.metadata = { name: "gadgets.example.bulwark.dev" };
    delete parsed.status;
    expect(
      (await h.kubectl(["apply", "-f", writeTemp(h.dir, "gadgets.json", JSON.stringify(parsed))])).code,
    ).toBe(0);
    await h.kubectl([
      "wait",
      "--for=condition=Established",
      "crd/gadgets.example.bulwark.dev",
      "--timeout=10s",
    ]);
    const gadget =
      "apiVersion: example.bulwark.dev/v1\nkind: Gadget\nmetadata:\n  name: g1\nspec:\n  size: 1\n";
    expect((await h.kubectl(["apply", "-f", writeTemp(h.dir, "g1.yaml", gadget)])).code).toBe(0);
    const d = await h.kubectl(["delete", "crd", "gadgets.example.bulwark.dev", "--timeout=20s"]);
    expect(d.stdout.trim()).toBe(
      'customresourcedefinition.apiextensions.k8s.io "gadgets.example.bulwark.dev" deleted',
    );
    // kubectl's discovery cache still knows the type, so the list itself is the 404 (as on a real cluster)
    const r = await h.kubectl(["get", "gadgets"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/could not find the requested resource|doesn't have a resource type "gadgets"/);
    const rl = await h.request("GET", "/apis/example.bulwark.dev/v1");
    expect((rl.json.resources as { name: string }[]).map((x) => x.name)).toEqual([
      "widgets",
      "widgets/status",
    ]);
  });

  const policyCrd = join(ROOT, "crds/resilience.bulwark.dev_resiliencepolicies.yaml");
  it.skipIf(!existsSync(policyCrd))(
    "applies the ResiliencePolicy CRD and the examples, client- and server-side",
    async () => {
      let r = await h.kubectl(["apply", "-f", policyCrd]);
      expect(r.code).toBe(0);
      r = await h.kubectl([
        "wait",
        "--for=condition=Established",
        "crd/resiliencepolicies.resilience.bulwark.dev",
        "--timeout=10s",
      ]);
      expect(r.code).toBe(0);
      r = await h.kubectl(["explain", "resiliencepolicy.spec"]);
      expect(r.stdout).toContain("FIELD: spec <Object>");
      const examples = join(ROOT, "examples");
      const files = existsSync(examples) ? readdirSync(examples).filter((f) => f.endsWith(".yaml")) : [];
      if (files.length === 0) return;
      await h.kubectl(["create", "namespace", "shop"]);
      r = await h.kubectl(["apply", "-f", examples]);
      expect(r.stderr).toBe("");
      expect(r.stdout.trim().split("\n")).toHaveLength(files.length);
      // the client-side → server-side upgrade works without conflicts on defaulted, list-keyed specs
      r = await h.kubectl(["apply", "--server-side", "-f", examples]);
      expect(r.stderr).toBe("");
      r = await h.kubectl(["get", "rp", "-n", "shop"]);
      expect(
        r.stdout
          .split("\n")[0]
          ?.trim()
          .split(/\s{2,}/),
      ).toEqual(["NAME", "MODE", "READY", "PODS", "OPEN BREAKERS", "AGE"]);
    },
  );

  it.skipIf(!existsSync(join(ROOT, "examples/http-client-retries-breaker.yaml")))(
    "rejects an invalid ResiliencePolicy naming the field (a CEL rule)",
    async () => {
      const bad = readFileSync(join(ROOT, "examples/http-client-retries-breaker.yaml"), "utf8").replace(
        /max: 250ms/,
        "max: 1ms",
      );
      await h.kubectl(["create", "namespace", "shop"]);
      const r = await h.kubectl(["apply", "-f", "-"], { input: bad });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/spec\.upstreams\[0\]\.retry\.backoff\.max/);
    },
  );
});
