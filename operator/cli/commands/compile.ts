// Placeholder until issue 2 lands: says so plainly instead of pretending to work.
import { CommandError, type Command } from "../command.js";

export const command: Command = {
  help: "Usage: bulwark compile — not built yet (issue 2).",
  run() {
    return Promise.reject(new CommandError("not built yet (issue 2)", 1));
  },
};
