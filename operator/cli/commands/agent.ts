// `bulwark agent`: the sidecar. Flags and environment are read in operator/agent/settings.ts; the agent
// itself lives in operator/agent/agent.ts.
import { CommandError, untilSignal, type Command } from "../command.js";
import { Agent } from "../../agent/agent.js";
import { FileConfigSource } from "../../agent/file-config-source.js";
import { AGENT_HELP, loadSettings } from "../../agent/settings.js";

export const command: Command = {
  help: AGENT_HELP,
  async run(argv) {
    const settings = loadSettings(argv);
    if (settings.configFile === undefined) {
      throw new CommandError(
        "--operator: the distribution client is not built yet (distribution issue); run standalone with --config FILE",
        1,
      );
    }
    const agent = new Agent({ settings, source: new FileConfigSource(settings.configFile) });
    try {
      await agent.start();
    } catch (err) {
      await agent.stop(0).catch(() => undefined);
      throw new CommandError(`cannot start: ${(err as Error).message}`, 1, { cause: err });
    }
    const signal = await untilSignal();
    await agent.stop(5000, { signal });
    return 0;
  },
};
