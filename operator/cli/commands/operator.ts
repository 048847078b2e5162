// `bulwark operator`: the control plane (issue 5). Parses flags, starts the loop (operator/app/operator.ts)
// with the distribution server (operator/distribution/), and runs until SIGTERM/SIGINT: then it stops taking
// work, finishes in-flight reconciles, releases the lease and exits 0. Exits 1 when it cannot go on (lost
// lease, a watch that gave up, the API unreachable at start), so the pod restarts.
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { CommandError, parseFlags, untilSignal, type Command } from "../command.js";

const help = `Usage: bulwark operator [--kubeconfig FILE] [flags]

The control plane: watches ResiliencePolicies and pods in every namespace, compiles one sidecar config
per selected pod, pushes it to the pod's agent over the distribution port, and reports on each policy's
status (Accepted, Conflicted, Propagated, Ready; selected/acked/pending/rejected pods). Several replicas run
side by side: the one holding the Lease writes status and serves agents; the others answer agents
"not-leader" until they take over. Uses the in-cluster config (the pod's ServiceAccount) when no kubeconfig
is given.

Flags:
  --kubeconfig FILE           kubeconfig to use (default: in-cluster config)
  --metrics-port N            Prometheus /metrics (default 9464; 0 = any free port)
  --health-port N             /healthz and /readyz, ready once the caches synced (default 8081)
  --distribution-port N       config distribution to agents (default 15010)
  --webhook-port N            serve the admission webhooks (sidecar injection, policy validation) over TLS
                              on this port (the chart sets 9443; default: not served)
  --webhook-service NAME      the Service in front of the webhooks and distribution (default bulwark); its
                              DNS names go into the self-managed certificate
  --webhook-secret NAME       self-managed TLS: keep the operator's CA and serving certificate in this Secret
                              of the operator's namespace (default bulwark-webhook-tls), and set the caBundle
                              of --mutating-webhook / --validating-webhook
  --webhook-cert-dir DIR      cert-manager TLS instead: tls.crt, tls.key (and ca.crt) mounted here
  --mutating-webhook NAME     MutatingWebhookConfiguration whose caBundle the operator keeps set
  --validating-webhook NAME   ValidatingWebhookConfiguration whose caBundle the operator keeps set
  --injector-config FILE      the sidecar injector's settings (JSON, rendered by the chart from agent.*);
                              without it pods are not injected
  --bind-address ADDR         interface for the metrics, health and distribution ports (default 0.0.0.0)
  --tls-cert FILE             serve distribution over TLS with this certificate (PEM) ...
  --tls-key FILE              ... and this key; plain HTTP when neither is given
  --leader-elect=BOOL         compete for the Lease before writing (default true)
  --id NAME                   this replica's identity in the Lease (default: $POD_NAME or the host name)
  --lease-name NAME           the Lease (default bulwark-operator)
  --lease-namespace NS        its namespace (default: $POD_NAMESPACE, the pod's namespace, else default)
  --lease-duration DURATION   how long a Lease is honoured after its last renewal (default 15s)
  --renew-deadline DURATION   a leader that has not renewed for this long steps down (default 10s)
  --retry-period DURATION     between tries to acquire or renew (default 2s)
  --workers N                 policies reconciled at once (default 2)
  --withdrawal-timeout DURATION
                              a deleted policy waits at most this long for its agents to acknowledge
                              the withdrawal before its finalizer is removed (default 30s)
  --log-level LEVEL           error | warn | info | debug (default info); JSON lines on stderr
  -h, --help                  show this help`;

type Level = "error" | "warn" | "info" | "debug";
const LEVELS: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };

function jsonLogger(level: Level) {
  const line =
    (lvl: Level) =>
    (msg: string, fields: Record<string, unknown> = {}) => {
      if (LEVELS[lvl] > LEVELS[level]) return;
      process.stderr.write(
        JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields }) + "\n",
      );
    };
  return { error: line("error"), warn: line("warn"), info: line("info"), debug: line("debug") };
}

function durationMs(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(v.trim());
  if (!m) throw new CommandError(`--${flag} must be a duration such as 500ms, 15s or 1m, got "${v}"`);
  const n = Number(m[1]);
  return Math.round(m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : n * 60_000);
}

function int(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new CommandError(`--${flag} must be an integer from ${min} to ${max}, got "${v}"`);
  return n;
}

function bool(flag: string, v: string): boolean {
  if (v === "true") return true;
  if (v === "false") return false;
  throw new CommandError(`--${flag} must be true or false, got "${v}"`);
}

export const command: Command = {
  help,
  async run(argv) {
    const { values } = parseFlags(argv, {
      kubeconfig: { type: "string" },
      "metrics-port": { type: "string", default: "9464" },
      "health-port": { type: "string", default: "8081" },
      "distribution-port": { type: "string", default: "15010" },
      "webhook-port": { type: "string" },
      "webhook-service": { type: "string", default: "bulwark" },
      "webhook-secret": { type: "string", default: "bulwark-webhook-tls" },
      "webhook-cert-dir": { type: "string" },
      "mutating-webhook": { type: "string" },
      "validating-webhook": { type: "string" },
      "injector-config": { type: "string" },
      "bind-address": { type: "string", default: "0.0.0.0" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "leader-elect": { type: "string", default: "true" },
      id: { type: "string" },
      "lease-name": { type: "string", default: "bulwark-operator" },
      "lease-namespace": { type: "string" },
      "lease-duration": { type: "string", default: "15s" },
      "renew-deadline": { type: "string", default: "10s" },
      "retry-period": { type: "string", default: "2s" },
      workers: { type: "string", default: "2" },
      "withdrawal-timeout": { type: "string", default: "30s" },
      "log-level": { type: "string", default: "info" },
      help: { type: "boolean", short: "h", default: false },
    });
    if (values.help) {
      console.log(help);
      return 0;
    }
    const level = values["log-level"] as Level;
    if (!(level in LEVELS)) throw new CommandError(`--log-level must be error, warn, info or debug`);
    const metricsPort = int("metrics-port", values["metrics-port"], 0, 65535);
    const healthPort = int("health-port", values["health-port"], 0, 65535);
    const distributionPort = int("distribution-port", values["distribution-port"], 0, 65535);
    const webhookPort =
      values["webhook-port"] === undefined
        ? undefined
        : int("webhook-port", values["webhook-port"], 0, 65535);
    const leaderElection = bool("leader-elect", values["leader-elect"]);
    const leaseDurationMs = durationMs("lease-duration", values["lease-duration"]);
    const renewDeadlineMs = durationMs("renew-deadline", values["renew-deadline"]);
    const retryPeriodMs = durationMs("retry-period", values["retry-period"]);
    if (!(leaseDurationMs > renewDeadlineMs && renewDeadlineMs > 1.2 * retryPeriodMs && retryPeriodMs > 0))
      throw new CommandError("want --lease-duration > --renew-deadline > 1.2 × --retry-period > 0");
    const workers = int("workers", values.workers, 1, 64);
    const withdrawalTimeoutMs = durationMs("withdrawal-timeout", values["withdrawal-timeout"]);
    if ((values["tls-cert"] === undefined) !== (values["tls-key"] === undefined))
      throw new CommandError("--tls-cert and --tls-key go together");
    let tls: { cert: Buffer; key: Buffer } | undefined;
    try {
      tls =
        values["tls-cert"] && values["tls-key"]
          ? { cert: readFileSync(values["tls-cert"]), key: readFileSync(values["tls-key"]) }
          : undefined;
    } catch (err) {
      throw new CommandError(`reading the TLS files: ${(err as Error).message}`, 2, { cause: err });
    }
    let injector;
    if (values["injector-config"]) {
      const { loadInjectorConfig } = await import("../../webhook/injector-config.js");
      try {
        injector = loadInjectorConfig(values["injector-config"]);
      } catch (err) {
        throw new CommandError((err as Error).message, 2, { cause: err });
      }
    }
    const identity = values.id ?? process.env.POD_NAME ?? hostname();
    const bindAddress = values["bind-address"];
    const logger = jsonLogger(level);

    const { startOperator, defaultLeaseNamespace } = await import("../../app/operator.js");
    const { distributionServerFactory } = await import("../../app/distribution.js");

    let operator;
    try {
      operator = await startOperator({
        ...(values.kubeconfig ? { kubeconfigPath: values.kubeconfig } : {}),
        identity,
        leaderElection,
        leaseName: values["lease-name"],
        ...(values["lease-namespace"] ? { leaseNamespace: values["lease-namespace"] } : {}),
        leaseDurationMs,
        renewDeadlineMs,
        retryPeriodMs,
        workers,
        healthPort,
        metricsPort,
        distributionPort,
        bindAddress,
        withdrawalTimeoutMs,
        logger,
        ...(webhookPort === undefined
          ? {}
          : {
              webhook: {
                port: webhookPort,
                host: bindAddress,
                certificate: values["webhook-cert-dir"]
                  ? { kind: "files" as const, dir: values["webhook-cert-dir"] }
                  : {
                      kind: "self-managed" as const,
                      namespace: values["lease-namespace"] ?? defaultLeaseNamespace(),
                      secretName: values["webhook-secret"],
                      service: values["webhook-service"],
                      ...(values["mutating-webhook"] ? { mutatingWebhook: values["mutating-webhook"] } : {}),
                      ...(values["validating-webhook"]
                        ? { validatingWebhook: values["validating-webhook"] }
                        : {}),
                    },
                ...(injector ? { injector } : {}),
              },
            }),
        distributor: distributionServerFactory({
          host: bindAddress,
          ...(tls ? { tls } : {}),
          operatorId: identity,
          onStarted: (server) => logger.info("distribution serving", { url: server.url }),
          log: (event, fields) => logger.debug(event, fields),
        }),
      });
    } catch (err) {
      throw new CommandError(`cannot start: ${(err as Error).message}`, 1, { cause: err });
    }
    logger.info("operator started", {
      identity,
      health: operator.healthUrl,
      metrics: operator.metricsUrl,
      leaderElection,
    });

    const outcome = await Promise.race([
      untilSignal().then((signal) => ({ kind: "signal" as const, signal })),
      operator.done.then((exit) => ({ kind: "exit" as const, exit })),
    ]);
    if (outcome.kind === "signal") {
      logger.info("stopping", { signal: outcome.signal });
      await operator.stop();
      logger.info("stopped");
      return 0;
    }
    await operator.stop({ release: false }).catch(() => undefined);
    if (outcome.exit.reason === "stopped") return 0;
    logger.error("exiting", { reason: outcome.exit.reason });
    return 1;
  },
};
