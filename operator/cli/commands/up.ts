// `bulwark up`: the whole demo on the embedded dev cluster (what `make run` does). Parses flags; the demo
// itself lives in operator/demo/.
import { isAbsolute, resolve } from "node:path";
import { parseDuration } from "../../api/duration.js";
import { CommandError, parseFlags, untilSignal, type Command } from "../command.js";

const help = `Usage: bulwark up [flags]

The main job on a fresh machine: starts the embedded dev cluster (kubeconfig in <state-dir>/kubeconfig),
applies the ResiliencePolicy CRD, starts the operator, and a demo workload in namespace shop — checkout
(3 pods) calling payments (2) and inventory (2), each pod a small demo app with a real \`bulwark agent\`
child process in front — applies the demo policies, drives steady traffic with three priority tiers,
and loops a fault script: payments fails (breaker opens, fallback serves, then half-open, closed),
inventory slows (adaptive limit, the lowest tier is shed), a payments pod turns unready (quotas move).
Shows it live; Ctrl-C stops every process it started and exits 0.

Flags:
  --no-faults              traffic only, no fault script
  --pods N                 checkout pods, 1–9 (default 3; payments and inventory have 2 each)
  --duration D             stop by itself after D (e.g. 45s, 2m) and exit 0 (default: until Ctrl-C)
  --json                   one machine-readable snapshot per line on stdout (progress on stderr)
  --rps N                  requests per second to checkout (default 40)
  --fault-scale F          multiply the fault script's step lengths by F, 0.2–10 (default 1: a 62s cycle)
  --state-dir DIR          kubeconfig, prometheus.yml, logs, tokens, agent state (default .bulwark)
  --cluster-port N         dev cluster API on 127.0.0.1 (default 16443; 0 = any free port)
  --metrics-port N         operator /metrics (default 9464; 0 = any)
  --health-port N          operator /healthz, /readyz (default 8081; 0 = any)
  --distribution-port N    operator config distribution (default 15010; 0 = any)
  --prometheus-port N      Prometheus, started when the prometheus binary is on PATH (default 9090;
                           0 = do not start it); the scrape config is written either way
  --port-base N            demo services at N..N+2, pod i's agent admin/outbound/inbound and app at
                           N+10+10·i .. +3 (default 20000)
  -h, --help               show this help`;

function int(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new CommandError(`--${flag} must be an integer from ${min} to ${max}, got "${v}"`);
  return n;
}

export const command: Command = {
  help,
  async run(argv) {
    const { values } = parseFlags(argv, {
      "no-faults": { type: "boolean", default: false },
      pods: { type: "string", default: "3" },
      duration: { type: "string" },
      json: { type: "boolean", default: false },
      rps: { type: "string", default: "40" },
      "fault-scale": { type: "string", default: "1" },
      "state-dir": { type: "string", default: ".bulwark" },
      "cluster-port": { type: "string", default: "16443" },
      "metrics-port": { type: "string", default: "9464" },
      "health-port": { type: "string", default: "8081" },
      "distribution-port": { type: "string", default: "15010" },
      "prometheus-port": { type: "string", default: "9090" },
      "port-base": { type: "string", default: "20000" },
      help: { type: "boolean", short: "h", default: false },
    });
    if (values.help) {
      console.log(help);
      return 0;
    }
    let durationMs: number | undefined;
    if (values.duration !== undefined) {
      try {
        durationMs = parseDuration(values.duration);
      } catch {
        throw new CommandError(`--duration must be a duration such as 45s or 2m, got "${values.duration}"`);
      }
      if (!(durationMs > 0)) throw new CommandError("--duration must be more than 0");
    }
    const faultScale = Number(values["fault-scale"]);
    if (!(faultScale >= 0.2 && faultScale <= 10))
      throw new CommandError(`--fault-scale must be a number from 0.2 to 10, got "${values["fault-scale"]}"`);
    const pods = int("pods", values.pods, 1, 9);
    const portBase = int("port-base", values["port-base"], 1024, 65_535 - 10 - 10 * (pods + 4));
    const stateDir = values["state-dir"];

    const { planLayout } = await import("../../demo/layout.js");
    const { runDemo, DemoError } = await import("../../demo/demo.js");
    const { PortInUseError } = await import("../../demo/ports.js");
    const layout = planLayout({
      stateDir: isAbsolute(stateDir) ? stateDir : resolve(stateDir),
      clusterPort: int("cluster-port", values["cluster-port"], 0, 65_535),
      metricsPort: int("metrics-port", values["metrics-port"], 0, 65_535),
      healthPort: int("health-port", values["health-port"], 0, 65_535),
      distributionPort: int("distribution-port", values["distribution-port"], 0, 65_535),
      prometheusPort: int("prometheus-port", values["prometheus-port"], 0, 65_535),
      portBase,
      pods,
    });
    const stopped = untilSignal();
    try {
      return await runDemo({
        layout,
        faults: !values["no-faults"],
        faultScale,
        rps: int("rps", values.rps, 1, 500),
        durationMs,
        // The live view needs a terminal that reports its size (log-update fits the frame to it).
        view: values.json ? "json" : process.stdout.isTTY && (process.stdout.rows ?? 0) > 0 ? "tty" : "plain",
        untilStopped: stopped,
      });
    } catch (err) {
      if (err instanceof PortInUseError || err instanceof DemoError)
        throw new CommandError(err.message, 1, { cause: err });
      throw err;
    }
  },
};
