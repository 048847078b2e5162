// `bulwark dev-cluster`: the embedded Kubernetes-API-compatible development cluster.
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { CommandError, parseFlags, untilSignal, type Command } from "../command.js";

const help = `Usage: bulwark dev-cluster --port N --kubeconfig FILE [--data DIR] [flags]

Starts an embedded Kubernetes-API-compatible server on 127.0.0.1 over HTTPS (self-signed CA, bearer
token), writes a kubeconfig the real kubectl and @kubernetes/client-node use as is, prints one line
"ready <url>" when it serves, and runs until SIGINT/SIGTERM.

This is a DEVELOPMENT cluster, like envtest or kwok: an API server with storage, watches, CRDs,
admission webhooks and the few controllers clients rely on (namespaces, garbage collection). It runs no
pods and is not a production apiserver.

Flags:
  --port N                 TCP port on 127.0.0.1; 0 picks a free port (default 0)
  --kubeconfig FILE        where to write the kubeconfig (required)
  --data DIR               keep the store in DIR across restarts (write-ahead log, fsync'd); memory only when unset
  --token TOKEN            admin bearer token (default: random, kept in DIR with --data)
  --history N              watch events kept per resource type for resumption (default 10000)
  --fault-latency MS       add MS of latency to every request (default 0)
  --fault-fail-next N      fail the next N requests (default 0)
  --fault-fail-code CODE   status for --fault-fail-next: 500, 429 or 503 (default 503)
  -h, --help               show this help

Fault injection at run time: POST /_bulwark/faults with the admin token and a JSON body
{"action":"dropWatches"|"compact"|"restart"|"reset"} or {"action":"failNext","count":N,"code":503}
or {"action":"latency","ms":M}.`;

export const command: Command = {
  help,
  async run(argv) {
    const { values } = parseFlags(argv, {
      port: { type: "string", default: "0" },
      kubeconfig: { type: "string" },
      data: { type: "string" },
      token: { type: "string" },
      history: { type: "string", default: "10000" },
      "fault-latency": { type: "string", default: "0" },
      "fault-fail-next": { type: "string", default: "0" },
      "fault-fail-code": { type: "string", default: "503" },
      help: { type: "boolean", short: "h", default: false },
    });
    if (values.help) {
      console.log(help);
      return 0;
    }
    const int = (name: string, v: string | undefined, min: number, max: number) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max)
        throw new CommandError(`--${name} must be an integer from ${min} to ${max}, got "${v}"`);
      return n;
    };
    if (!values.kubeconfig) throw new CommandError("--kubeconfig FILE is required\n\n" + help);
    const port = int("port", values.port, 0, 65535);
    const failCode = int("fault-fail-code", values["fault-fail-code"], 0, 999);
    if (failCode !== 500 && failCode !== 429 && failCode !== 503)
      throw new CommandError("--fault-fail-code must be 500, 429 or 503");
    const { startDevCluster } = await import("../../devcluster/server.js");
    const opts: Parameters<typeof startDevCluster>[0] = {
      port,
      historyLimit: int("history", values.history, 1, 10_000_000),
      faults: {
        latencyMs: int("fault-latency", values["fault-latency"], 0, 600_000),
        failNext: int("fault-fail-next", values["fault-fail-next"], 0, 1_000_000),
        failCode,
      },
    };
    if (values.data) opts.dataDir = resolve(values.data);
    if (values.token) opts.adminToken = values.token;
    let cluster;
    try {
      cluster = await startDevCluster(opts);
    } catch (err) {
      throw new CommandError(`dev-cluster: ${(err as Error).message}`, 1, { cause: err });
    }
    writeFileSync(values.kubeconfig, cluster.kubeconfigFor(), { mode: 0o600 });
    console.log(`ready ${cluster.url}`);
    await untilSignal();
    await cluster.stop();
    return 0;
  },
};
