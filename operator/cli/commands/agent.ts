// `bulwark agent`: the sidecar. Flags and environment are read in operator/agent/settings.ts; the agent
// itself lives in operator/agent/agent.ts.
import { CommandError, untilSignal, type Command } from "../command.js";
import { Agent } from "../../agent/agent.js";
import type { ConfigSource } from "../../agent/config-source.js";
import { FileConfigSource } from "../../agent/file-config-source.js";
import { applyAgentGcSettings } from "../../agent/gc-settings.js";
import { AGENT_HELP, loadSettings, SettingsError, type AgentSettings } from "../../agent/settings.js";
import { operatorSource } from "../../distribution/agent-client.js";

export const command: Command = {
  help: AGENT_HELP,
  async run(argv) {
    let settings: AgentSettings;
    try {
      settings = loadSettings(argv);
    } catch (err) {
      if (err instanceof SettingsError) throw new CommandError(err.message, 2, { cause: err });
      throw err;
    }
    applyAgentGcSettings();
    // --operator wins over --config: the operator's config, with the agent's state dir as last-known-good.
    let agent: Agent | undefined = undefined;
    const source: ConfigSource =
      settings.operatorUrl !== undefined
        ? operatorSource(settings, () => agent?.runtime?.version)
        : new FileConfigSource(settings.configFile ?? "");
    agent = new Agent({ settings, source });
    try {
      await agent.start();
    } catch (err) {
      await agent.stop(0).catch(() => undefined);
      throw new CommandError(`cannot start: ${(err as Error).message}`, 1, { cause: err });
    }
    // SIGHUP re-reads a config file now (and no longer ends the process, Node's default for it).
    const onHup = () => {
      if (source instanceof FileConfigSource) void source.reload();
    };
    process.on("SIGHUP", onHup);
    const signal = await untilSignal();
    process.off("SIGHUP", onHup);
    await agent.stop(5000, { signal });
    return 0;
  },
};
