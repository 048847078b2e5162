// What the sidecar injector puts into a pod: the chart renders it from values (agent.*) into a ConfigMap the
// operator reads with `--injector-config FILE`. Every field has a default, so `{}` is a valid config.
import { readFileSync } from "node:fs";
import { z } from "zod";

const port = z.number().int().min(1).max(65535);

export const InjectorConfig = z
  .object({
    /** The agent image. Default `ghcr.io/bulwark-dev/bulwark:latest` (the chart always sets it). */
    image: z.string().min(1).default("ghcr.io/bulwark-dev/bulwark:latest"),
    /** Default IfNotPresent. */
    imagePullPolicy: z.enum(["Always", "IfNotPresent", "Never"]).default("IfNotPresent"),
    /** The operator's distribution URL the agent dials. Default none (the agent then runs without one). */
    operatorUrl: z.string().url().optional(),
    /** Resources of the agent container, as in a Pod spec. Default none. */
    resources: z.record(z.string(), z.unknown()).optional(),
    /** securityContext of the agent container, as in a Pod spec. Default none. */
    securityContext: z.record(z.string(), z.unknown()).optional(),
    /** Default 15000. */
    adminPort: port.default(15000),
    /** Default 15001. */
    outboundPort: port.default(15001),
    /** Default 15006. */
    inboundPort: port.default(15006),
    /** The app's port when the pod names none. Default 8080. */
    appPort: port.default(8080),
    /** Lifetime of the projected token (audience bulwark). Default 3600. */
    tokenExpirationSeconds: z.number().int().min(600).max(86_400).default(3600),
  })
  .strict();
export type InjectorConfig = z.infer<typeof InjectorConfig>;

/** Parses a config object; throws with every problem named. */
export function parseInjectorConfig(input: unknown): InjectorConfig {
  const r = InjectorConfig.safeParse(input ?? {});
  if (!r.success)
    throw new Error(
      `injector config: ${r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`,
    );
  return r.data;
}

export function loadInjectorConfig(path: string): InjectorConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`injector config ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseInjectorConfig(raw);
}
