// A Prometheus scrape config for the demo: the operator's /metrics and every agent's admin /metrics, with
// the pod and app as labels, so `prometheus --config.file=<state-dir>/prometheus.yml` works as written.
import type { Layout } from "./layout.js";

export function prometheusConfig(layout: Layout, operatorMetricsPort: number): string {
  const lines = [
    "# Written by `bulwark up`: scrape the demo's operator and agents.",
    "#   prometheus --config.file=" + layout.stateDir + "/prometheus.yml",
    "global:",
    "  scrape_interval: 5s",
    "scrape_configs:",
    "  - job_name: bulwark-operator",
    "    static_configs:",
    `      - targets: ["127.0.0.1:${operatorMetricsPort}"]`,
    "  - job_name: bulwark-agent",
    "    static_configs:",
  ];
  for (const p of layout.pods)
    lines.push(
      `      - targets: ["127.0.0.1:${p.adminPort}"]`,
      `        labels: {namespace: shop, pod: ${p.name}, app: ${p.app}}`,
    );
  return lines.join("\n") + "\n";
}
