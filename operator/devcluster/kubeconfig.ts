// The kubeconfig the dev cluster writes: the CA it trusts, the server URL and a bearer token.
import { stringify } from "yaml";

export function kubeconfigYaml(opts: {
  url: string;
  caPem: string;
  token: string;
  name?: string;
  namespace?: string;
}): string {
  const name = opts.name ?? "bulwark-dev";
  const context: Record<string, string> = { cluster: name, user: `${name}-user` };
  if (opts.namespace) context.namespace = opts.namespace;
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name,
        cluster: {
          server: opts.url,
          "certificate-authority-data": Buffer.from(opts.caPem).toString("base64"),
        },
      },
    ],
    users: [{ name: `${name}-user`, user: { token: opts.token } }],
    contexts: [{ name, context }],
    "current-context": name,
    preferences: {},
  });
}
