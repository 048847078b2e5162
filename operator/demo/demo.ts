// `bulwark up`, put together: the dev cluster, the CRD, the operator (in this process, through their library
// entry points), the demo apps and services, the Pods with bound tokens, the policies, one `bulwark agent`
// child process per pod, the traffic driver, the fault script and the live view. Everything it starts is
// stopped on SIGINT/SIGTERM (or after --duration), in reverse order.
import { accessSync, constants, createWriteStream, mkdirSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { delimiter, join } from "node:path";
import { stringify } from "yaml";
import { buildCrd } from "../api/crd.js";
import { distributionServerFactory } from "../app/distribution.js";
import { startOperator, type RunningOperator } from "../app/operator.js";
import { startDevCluster, type DevCluster } from "../devcluster/server.js";
import { startApp, type DemoApp } from "./apps.js";
import { DemoCluster } from "./cluster.js";
import { FaultScript } from "./fault-script.js";
import { NAMESPACE, POLICY_APP_PORT, namedPorts, paths, type Layout } from "./layout.js";
import { demoPolicies } from "./policies.js";
import { checkPorts } from "./ports.js";
import { prometheusConfig } from "./prometheus.js";
import { startService, type DemoService } from "./services.js";
import { SnapshotCollector, type Snapshot } from "./snapshot.js";
import { Supervisor, agentArgs, cleanStale } from "./supervisor.js";
import { TrafficDriver } from "./traffic.js";
import { createView, type ViewMode } from "./view.js";

export interface DemoOptions {
  readonly layout: Layout;
  readonly faults: boolean;
  /** Fault-script timings × this. */
  readonly faultScale: number;
  readonly rps: number;
  /** Stop by itself after this long (ms). */
  readonly durationMs: number | undefined;
  readonly view: ViewMode;
  /** Resolves when the user asks to stop (SIGINT/SIGTERM). */
  readonly untilStopped: Promise<unknown>;
}

/** A start-up failure the user can act on (the message says how); exit code 1. */
export class DemoError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DemoError";
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function readyz(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/readyz", agent: false, timeout: 500 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
  });
}

/** The preload that gives each agent its pod's localhost (see pod-network.ts), as a file URL. */
function podNetworkPreload(): string {
  const self = import.meta.url;
  return new URL(self.endsWith(".ts") ? "./pod-network.ts" : "./pod-network.js", self).href;
}

/** The first executable `name` on PATH, if any. */
function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** Every tier got answers, at least 95% of them plain successes, and every breaker is closed. */
function isSteady(s: Snapshot): boolean {
  const tiers = Object.values(s.traffic.window);
  const sent = tiers.reduce((n, c) => n + c.ok + c.fallback + c.shed + c.error, 0);
  const ok = tiers.reduce((n, c) => n + c.ok, 0);
  const breakersClosed = s.pods.every((p) => Object.values(p.breakers).every((b) => b === "closed"));
  return sent >= 5 && ok >= 0.95 * sent && breakersClosed;
}

export async function runDemo(o: DemoOptions): Promise<number> {
  const { layout } = o;
  const p = paths(layout.stateDir);
  mkdirSync(layout.stateDir, { recursive: true });
  const stale = await cleanStale(p.pids);
  if ("running" in stale)
    throw new DemoError(
      `another \`bulwark up\` is running (pid ${stale.running}) with --state-dir ${layout.stateDir}; ` +
        `stop it (Ctrl-C there, or kill ${stale.running}) or use another --state-dir`,
    );
  if (stale.killed > 0)
    process.stderr.write(`bulwark up: stopped ${stale.killed} agent(s) a previous run left behind\n`);
  rmSync(p.run, { recursive: true, force: true });
  for (const d of [p.logs, p.tokens]) mkdirSync(d, { recursive: true });
  const prometheusBin = layout.prometheusPort !== 0 ? findOnPath("prometheus") : undefined;
  await checkPorts(namedPorts(layout).filter((x) => prometheusBin || x.flag !== "--prometheus-port"));

  const view = await createView(o.view);
  const stack: { name: string; stop: () => Promise<void> | void }[] = [];
  let stopping = false;
  const problems: string[] = [];
  const note = (msg: string) => problems.push(msg);
  const operatorLog = createWriteStream(join(p.logs, "operator.log"));
  stack.push({ name: "operator log", stop: () => new Promise<void>((r) => operatorLog.end(() => r())) });
  const stopAll = async () => {
    stopping = true;
    for (const s of stack.reverse()) {
      try {
        await s.stop();
      } catch (err) {
        process.stderr.write(`bulwark up: stopping ${s.name}: ${(err as Error).message}\n`);
      }
    }
  };

  try {
    const t0 = Date.now();
    const status = (msg: string) => {
      if (o.view !== "json") process.stderr.write(`· ${((Date.now() - t0) / 1000).toFixed(1)}s ${msg}\n`);
    };
    // 1. The dev cluster and the CRD.
    status("starting the dev cluster");
    let cluster: DevCluster;
    try {
      cluster = await startDevCluster({ port: layout.clusterPort, kubeconfigPath: p.kubeconfig });
    } catch (err) {
      throw new DemoError(`the dev cluster did not start: ${(err as Error).message}`, { cause: err });
    }
    stack.push({ name: "dev cluster", stop: () => cluster.stop() });
    writeFileSync(p.kubeconfig, cluster.kubeconfigFor(), { mode: 0o600 });
    const kube = new DemoCluster(p.kubeconfig);
    await kube.installCrd(buildCrd());
    await kube.createNamespace();

    // 2. The operator, serving distribution to the agents.
    status("starting the operator");
    const log =
      (level: string) =>
      (msg: string, fields: Record<string, unknown> = {}) =>
        operatorLog.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + "\n");
    const logger = { info: log("info"), warn: log("warn"), error: log("error"), debug: log("debug") };
    let distributionUrl = "";
    const operator: RunningOperator = await startOperator({
      kubeconfigPath: p.kubeconfig,
      identity: "bulwark-up",
      leaderElection: false,
      healthPort: layout.healthPort,
      metricsPort: layout.metricsPort,
      distributionPort: layout.distributionPort,
      bindAddress: "127.0.0.1",
      withdrawalTimeoutMs: 5000,
      shutdownTimeoutMs: 5000,
      logger,
      // The operator's own distribution factory, so the demo runs exactly what `bulwark operator` runs
      // (reports reach the allocator; a hand-wired copy once dropped them and quotas never moved).
      distributor: distributionServerFactory({
        host: "127.0.0.1",
        operatorId: "bulwark-up",
        onStarted: (server) => (distributionUrl = server.url),
        log: (event, fields) => logger.debug(event, fields),
      }),
    });
    stack.push({ name: "operator", stop: () => operator.stop() });
    void operator.done.then((exit) => {
      if (!stopping && exit.reason !== "stopped")
        note(`the operator ended: ${exit.reason} (see ${p.logs}/operator.log)`);
    });
    await operator.synced;
    const metricsPort = Number(new URL(operator.metricsUrl ?? "http://127.0.0.1:0").port);

    // 3. Services, apps, Pods with their tokens, the policies.
    status("starting the demo workload");
    const services = new Map<string, DemoService>();
    for (const [name, port] of Object.entries(layout.servicePorts)) {
      const s = await startService(name, port);
      services.set(name, s);
      stack.push({ name: `${name} service`, stop: () => s.close() });
    }
    const authority = (svc: string) => `127.0.0.1:${services.get(svc)?.port ?? 0}`;
    const apps: DemoApp[] = [];
    for (const pod of layout.pods) {
      const app = await startApp(
        pod.name,
        pod.app,
        pod.appPort,
        pod.app === "checkout"
          ? {
              outboundPort: pod.outboundPort,
              payments: authority("payments"),
              inventory: authority("inventory"),
            }
          : undefined,
      );
      apps.push(app);
      stack.push({ name: `${pod.name} app`, stop: () => app.close() });
    }
    const ready = new Map(layout.pods.map((pod) => [pod.name, true]));
    const syncEndpoints = () => {
      for (const [name, svc] of services)
        svc.setEndpoints(
          layout.pods.filter((x) => x.app === name && ready.get(x.name)).map((x) => x.inboundPort),
        );
    };
    for (const pod of layout.pods) await kube.registerPod(pod, join(p.tokens, pod.name));
    const policies = demoPolicies(layout);
    writeFileSync(p.policies, policies.map((x) => stringify(x)).join("---\n"));
    await kube.applyPolicies(policies);

    // 4. One agent per pod, a real child process.
    status(`starting ${layout.pods.length} agents`);
    const supervisor = new Supervisor(p.pids, (name, code, signal) => {
      if (!stopping) note(`${name} exited (${signal ?? `code ${code}`}); see ${p.logs}/${name}.log`);
    });
    stack.push({ name: "agents", stop: () => supervisor.stopAll() });
    const preload = podNetworkPreload();
    for (const pod of layout.pods) {
      mkdirSync(p.agentState(pod.name), { recursive: true });
      supervisor.start({
        name: pod.name,
        logFile: join(p.logs, `${pod.name}.log`),
        env: {
          BULWARK_DEMO_APP_PORT: String(pod.appPort),
          BULWARK_DEMO_POLICY_APP_PORT: String(POLICY_APP_PORT),
        },
        args: agentArgs({
          preload,
          operatorUrl: distributionUrl,
          tokenFile: join(p.tokens, pod.name),
          pod: pod.name,
          namespace: NAMESPACE,
          adminPort: pod.adminPort,
          outboundPort: pod.outboundPort,
          inboundPort: pod.inboundPort,
          appPort: pod.appPort,
          stateDir: p.agentState(pod.name),
        }),
      });
    }
    const deadline = Date.now() + 60_000;
    for (const pod of layout.pods) {
      while (!(await readyz(pod.adminPort))) {
        if (Date.now() > deadline)
          throw new DemoError(`agent ${pod.name} got no config within 60s; see ${p.logs}/${pod.name}.log`);
        if (problems.length > 0) throw new DemoError(problems.join("; "));
        await sleep(100);
      }
    }
    status("agents ready");
    syncEndpoints();

    // 5. Traffic, faults, and the view.
    const traffic = new TrafficDriver(layout.servicePorts.checkout, o.rps);
    traffic.start();
    stack.push({ name: "traffic", stop: () => traffic.stop() });
    let script: FaultScript | undefined;
    if (o.faults) {
      script = new FaultScript(
        {
          apps,
          setPodReady: async (name, isReady) => {
            ready.set(name, isReady);
            syncEndpoints();
            await kube.setReady(name, isReady);
          },
        },
        o.faultScale,
        (err) => note(`fault script: ${(err as Error).message}`),
      );
      const s = script;
      stack.push({ name: "fault script", stop: () => s.stop() });
    }
    // The script starts once traffic is steady (fresh processes on a busy machine are slow for a few
    // seconds, and a breaker that trips on that would muddle the first step), or after 30 s regardless.
    let scriptStarted = false;
    let steadyTicks = 0;
    const warmupUntil = Date.now() + 30_000;
    const maybeStartScript = (s: Snapshot) => {
      if (!script || scriptStarted) return;
      steadyTicks = isSteady(s) ? steadyTicks + 1 : 0;
      if (steadyTicks >= 2 || Date.now() > warmupUntil) {
        scriptStarted = true;
        script.start();
      }
    };
    writeFileSync(p.prometheus, prometheusConfig(layout, metricsPort));
    let prometheusLine = `prometheus --config.file=${p.prometheus}   (not on PATH; the config is ready)`;
    if (prometheusBin) {
      supervisor.start({
        name: "prometheus",
        command: prometheusBin,
        logFile: join(p.logs, "prometheus.log"),
        args: [
          `--config.file=${p.prometheus}`,
          `--storage.tsdb.path=${p.prometheusData}`,
          `--web.listen-address=127.0.0.1:${layout.prometheusPort}`,
        ],
      });
      prometheusLine = `http://127.0.0.1:${layout.prometheusPort}  (started: scrapes the operator and every agent; config ${p.prometheus})`;
    } else if (layout.prometheusPort === 0) {
      prometheusLine = `prometheus --config.file=${p.prometheus}`;
    }
    const kubectl = `kubectl --kubeconfig ${p.kubeconfig}`;
    view.banner([
      `Bulwark is up: dev cluster ${cluster.url}, operator, ${layout.pods.length} demo pods each with a bulwark agent, ${o.rps} req/s to checkout.`,
      `Look deeper:`,
      `  ${kubectl} get rp -n ${NAMESPACE}            (policies, Ready/Propagated; -o yaml for status)`,
      `  ${kubectl} get pods -n ${NAMESPACE}`,
      `  operator metrics  ${operator.metricsUrl ?? "-"}`,
      `  agent metrics     http://127.0.0.1:${layout.pods[0]?.adminPort}/metrics … http://127.0.0.1:${layout.pods.at(-1)?.adminPort}/metrics (also /status, /config)`,
      `  Prometheus        ${prometheusLine}`,
      `  logs              ${p.logs}/   policies applied: ${p.policies}`,
    ]);

    const collector = new SnapshotCollector({
      cluster: kube,
      pods: layout.pods,
      traffic: () => traffic,
      script: () => (scriptStarted ? script : undefined),
      warmingUp: () => o.faults && !scriptStarted,
      processes: () => supervisor.list(),
    });
    let last: Snapshot | undefined;
    let timer: NodeJS.Timeout | undefined;
    const finished = new Promise<string>((resolve) => {
      void o.untilStopped.then(() => resolve("signal"));
      if (o.durationMs !== undefined) setTimeout(() => resolve("duration"), o.durationMs).unref();
    });
    let collecting = false;
    const tick = async () => {
      if (collecting || stopping) return;
      collecting = true;
      try {
        last = await collector.collect();
        last = { ...last, errors: [...last.errors, ...problems] };
        maybeStartScript(last);
        if (!stopping) view.show(last);
      } finally {
        collecting = false;
      }
    };
    timer = setInterval(() => void tick(), 1000);
    await tick();
    await finished;
    clearInterval(timer);
    timer = undefined;
    view.done();
    if (o.view !== "json") process.stderr.write("bulwark up: stopping…\n");
    await stopAll();
    if (o.view !== "json")
      process.stderr.write("bulwark up: stopped; every process it started has exited.\n");
    return 0;
  } catch (err) {
    view.done();
    await stopAll();
    throw err;
  }
}
