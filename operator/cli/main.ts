#!/usr/bin/env node
// The one `bulwark` executable. Each subcommand lives in its own file under ./commands and is loaded
// only when asked for, so `bulwark compile` never pays for the dev cluster's imports.
import { CommandError, type Command } from "./command.js";

const commands: Record<string, () => Promise<{ command: Command }>> = {
  "dev-cluster": () => import("./commands/dev-cluster.js"),
  operator: () => import("./commands/operator.js"),
  agent: () => import("./commands/agent.js"),
  compile: () => import("./commands/compile.js"),
  up: () => import("./commands/up.js"),
};

function usage(): string {
  return [
    "Usage: bulwark <command> [flags]",
    "",
    "Commands:",
    "  dev-cluster  embedded Kubernetes-API-compatible development cluster (not a production apiserver)",
    "  operator     the control plane: watches ResiliencePolicies and pods, pushes configs to agents",
    "  agent        the sidecar proxy that enforces a pod's resilience config",
    "  compile      print, without a cluster, the sidecar configs policies compile to",
    "  up           the whole demo on the embedded dev cluster (what `make run` does)",
    "",
    "Run `bulwark <command> --help` for a command's flags.",
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const load = commands[name];
  if (!load) {
    console.error(`bulwark: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  let command: Command;
  try {
    ({ command } = await load());
  } catch (err) {
    console.error(`bulwark ${name}: not available in this build (${(err as Error).message})`);
    return 1;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(command.help);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof CommandError) {
      console.error(`bulwark ${name}: ${err.message}`);
      return err.exitCode;
    }
    console.error(`bulwark ${name}: ${(err as Error).stack ?? String(err)}`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
