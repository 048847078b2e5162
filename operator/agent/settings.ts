// Every setting of `bulwark agent` in one object: each has a flag, an environment variable (what the chart's
// injector sets) and a default. Flags win over the environment; the environment wins over the default.
import { parseArgs } from "node:util";

/** A bad flag, environment value or combination (the CLI turns it into exit code 2). */
export class SettingsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SettingsError";
  }
}

export interface AgentSettings {
  /** `--config` / `BULWARK_CONFIG`: a sidecar config file, reloaded on change. Default none. */
  configFile: string | undefined;
  /** `--operator` / `BULWARK_OPERATOR`: the operator's distribution URL (http or https). Default none. */
  operatorUrl: string | undefined;
  /** `--token-file` / `BULWARK_TOKEN_FILE`: the projected ServiceAccount token for the operator. Default none. */
  tokenFile: string | undefined;
  /** `--operator-ca` / `BULWARK_OPERATOR_CA`: PEM CA bundle that signs an https operator's certificate. Default the system CAs. */
  operatorCaFile?: string | undefined;
  /** `--pod` / `BULWARK_POD`: this pod's name, for logs and reports. Default none (standalone). */
  pod: string | undefined;
  /** `--namespace` / `BULWARK_NAMESPACE`: this pod's namespace; short upstream names resolve in it. Default none. */
  namespace: string | undefined;
  /** `--admin-port` / `BULWARK_ADMIN_PORT`: /config, /status, /healthz, /readyz, /metrics. Default 15000. */
  adminPort: number;
  /**
   * `--admin-expose` / `BULWARK_ADMIN_EXPOSE=true`: serve the admin paths that reveal the config (/config,
   * /status) to other hosts too. Without it they answer 403 to any peer but loopback; /metrics, /healthz and
   * /readyz are served to everyone (Prometheus and the kubelet reach them from outside the pod). Default false.
   */
  adminExpose?: boolean;
  /** `--outbound-port` / `BULWARK_OUTBOUND_PORT`: the app's calls to upstreams (HTTP proxy). Default 15001. */
  outboundPort: number;
  /** `--inbound-port` / `BULWARK_INBOUND_PORT`: traffic to the app. Default 15006. */
  inboundPort: number;
  /** `--app-port` / `BULWARK_APP_PORT`: the app's own port, used until a config names one. Default 8080. */
  appPort: number;
  /** `--state-dir` / `BULWARK_STATE_DIR`: where the last good config and breaker states persist. Default none. */
  stateDir: string | undefined;
  /**
   * `--listen-address` / `BULWARK_LISTEN_ADDRESS`: address of the inbound and admin listeners (reached from
   * other pods and Prometheus). The outbound listener always binds 127.0.0.1: only the app may use it.
   * Default 0.0.0.0.
   */
  listenAddress: string;
  /** `--state-max-age` / `BULWARK_STATE_MAX_AGE`: persisted breaker states older than this (seconds) are ignored. Default 600. */
  stateMaxAgeMs: number;
  /** `--report-interval` / `BULWARK_REPORT_INTERVAL`: seconds between load reports to the operator. Default 5. */
  reportIntervalMs?: number;
}

export const AGENT_DEFAULTS = {
  adminPort: 15000,
  outboundPort: 15001,
  inboundPort: 15006,
  appPort: 8080,
  listenAddress: "0.0.0.0",
  stateMaxAgeMs: 600_000,
  reportIntervalMs: 5000,
} as const;

export const AGENT_HELP = `Usage: bulwark agent [--config FILE] [--operator URL --token-file FILE [--operator-ca FILE]] --pod NAME --namespace NS
                     [--admin-port 15000] [--outbound-port 15001] [--inbound-port 15006] [--app-port 8080]
                     [--state-dir DIR] [--listen-address 0.0.0.0] [--state-max-age 600] [--report-interval 5]
                     [--admin-expose]

The sidecar proxy that enforces a pod's resilience config: retries, circuit breakers, timeouts, bulkheads,
rate limits, fallbacks on the app's outbound calls; priority load shedding, adaptive concurrency, bulkhead
and rate limit on inbound traffic. With --config alone it runs standalone on that file (reloaded on change).

Flags (each also read from the environment variable shown; a flag wins):
  --config FILE          BULWARK_CONFIG          sidecar config file (YAML or JSON), as printed by \`bulwark compile --pod\`
  --operator URL         BULWARK_OPERATOR        operator distribution URL (http:// or https://)
  --token-file FILE      BULWARK_TOKEN_FILE      ServiceAccount token (audience bulwark) for --operator
  --operator-ca FILE     BULWARK_OPERATOR_CA     CA bundle (PEM) of an https --operator (default: system CAs)
  --pod NAME             BULWARK_POD             this pod's name
  --namespace NS         BULWARK_NAMESPACE       this pod's namespace (short upstream names resolve in it)
  --admin-port N         BULWARK_ADMIN_PORT      admin listener: /config /status /healthz /readyz /metrics (default 15000)
  --admin-expose         BULWARK_ADMIN_EXPOSE    serve /config and /status to other hosts too (default: loopback only;
                                                 /metrics /healthz /readyz are always served)
  --outbound-port N      BULWARK_OUTBOUND_PORT   outbound HTTP proxy on 127.0.0.1 (default 15001)
  --inbound-port N       BULWARK_INBOUND_PORT    inbound reverse proxy (default 15006)
  --app-port N           BULWARK_APP_PORT        the app's port when the config names none (default 8080)
  --state-dir DIR        BULWARK_STATE_DIR       persist last good config and breaker states here (default: off)
  --listen-address ADDR  BULWARK_LISTEN_ADDRESS  address of the inbound and admin listeners (default 0.0.0.0)
  --state-max-age SECS   BULWARK_STATE_MAX_AGE   ignore persisted breaker states older than this (default 600)
  --report-interval SECS BULWARK_REPORT_INTERVAL seconds between load reports to the operator (default 5)
Port 0 picks a free port (tests). Exit codes: 0 after SIGINT/SIGTERM, 1 runtime failure, 2 usage error.`;

const flagOptions = {
  config: { type: "string" },
  operator: { type: "string" },
  "token-file": { type: "string" },
  "operator-ca": { type: "string" },
  pod: { type: "string" },
  namespace: { type: "string" },
  "admin-port": { type: "string" },
  "outbound-port": { type: "string" },
  "inbound-port": { type: "string" },
  "app-port": { type: "string" },
  "state-dir": { type: "string" },
  "listen-address": { type: "string" },
  "state-max-age": { type: "string" },
  "report-interval": { type: "string" },
  "admin-expose": { type: "boolean" },
} as const;

type Env = Readonly<Record<string, string | undefined>>;
/** The flags that take a value (the others are switches). */
type StringFlag = Exclude<keyof typeof flagOptions, "admin-expose">;

/** Reads flags and environment into settings; throws SettingsError on a bad value or combination. */
export function loadSettings(argv: string[], env: Env = process.env): AgentSettings {
  let values: ReturnType<typeof parseArgs<{ options: typeof flagOptions }>>["values"];
  try {
    ({ values } = parseArgs({ args: argv, options: flagOptions, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new SettingsError((err as Error).message, { cause: err });
  }
  const pick = (flag: StringFlag, envName: string): string | undefined => {
    const v = values[flag] ?? env[envName];
    return v === undefined || v === "" ? undefined : v;
  };
  const port = (flag: StringFlag, envName: string, dflt: number): number => {
    const raw = pick(flag, envName);
    if (raw === undefined) return dflt;
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n > 65535) {
      throw new SettingsError(`--${flag} (${envName}): expected a port 0-65535, got "${raw}"`);
    }
    return n;
  };
  const seconds = (flag: StringFlag, envName: string, dflt: number): number => {
    const raw = pick(flag, envName);
    if (raw === undefined) return dflt;
    if (!/^\d+(\.\d+)?$/.test(raw))
      throw new SettingsError(`--${flag} (${envName}): expected seconds, got "${raw}"`);
    return Math.round(Number(raw) * 1000);
  };
  const exposeEnv = env.BULWARK_ADMIN_EXPOSE;
  if (exposeEnv !== undefined && exposeEnv !== "" && !["true", "false", "1", "0"].includes(exposeEnv)) {
    throw new SettingsError(`BULWARK_ADMIN_EXPOSE: expected true or false, got "${exposeEnv}"`);
  }
  const adminExpose = values["admin-expose"] ?? (exposeEnv === "true" || exposeEnv === "1");
  const stateMaxAgeMs = seconds("state-max-age", "BULWARK_STATE_MAX_AGE", AGENT_DEFAULTS.stateMaxAgeMs);
  const reportIntervalMs = seconds(
    "report-interval",
    "BULWARK_REPORT_INTERVAL",
    AGENT_DEFAULTS.reportIntervalMs,
  );
  if (reportIntervalMs < 100) {
    throw new SettingsError(
      `--report-interval (BULWARK_REPORT_INTERVAL): at least 0.1 seconds, got "${pick("report-interval", "BULWARK_REPORT_INTERVAL")}"`,
    );
  }
  const settings: AgentSettings = {
    configFile: pick("config", "BULWARK_CONFIG"),
    operatorUrl: pick("operator", "BULWARK_OPERATOR"),
    tokenFile: pick("token-file", "BULWARK_TOKEN_FILE"),
    operatorCaFile: pick("operator-ca", "BULWARK_OPERATOR_CA"),
    pod: pick("pod", "BULWARK_POD"),
    namespace: pick("namespace", "BULWARK_NAMESPACE"),
    adminPort: port("admin-port", "BULWARK_ADMIN_PORT", AGENT_DEFAULTS.adminPort),
    adminExpose,
    outboundPort: port("outbound-port", "BULWARK_OUTBOUND_PORT", AGENT_DEFAULTS.outboundPort),
    inboundPort: port("inbound-port", "BULWARK_INBOUND_PORT", AGENT_DEFAULTS.inboundPort),
    appPort: port("app-port", "BULWARK_APP_PORT", AGENT_DEFAULTS.appPort),
    stateDir: pick("state-dir", "BULWARK_STATE_DIR"),
    listenAddress: pick("listen-address", "BULWARK_LISTEN_ADDRESS") ?? AGENT_DEFAULTS.listenAddress,
    stateMaxAgeMs,
    reportIntervalMs,
  };
  if (settings.configFile === undefined && settings.operatorUrl === undefined) {
    throw new SettingsError("need --config FILE (standalone) or --operator URL --token-file FILE");
  }
  if (settings.operatorUrl !== undefined) {
    if (!/^https?:\/\/[^/]+/.test(settings.operatorUrl)) {
      throw new SettingsError(
        `--operator: expected an http:// or https:// URL, got "${settings.operatorUrl}"`,
      );
    }
    if (settings.tokenFile === undefined) throw new SettingsError("--operator needs --token-file");
    if (settings.pod === undefined || settings.namespace === undefined) {
      throw new SettingsError("--operator needs --pod and --namespace (the identity its token is bound to)");
    }
  }
  const ports = [settings.adminPort, settings.outboundPort, settings.inboundPort].filter((p) => p !== 0);
  if (new Set(ports).size !== ports.length) {
    throw new SettingsError("--admin-port, --outbound-port and --inbound-port must differ");
  }
  return settings;
}
