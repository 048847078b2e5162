// Placeholder until issue 3 lands: says so plainly instead of pretending to work.
import { CommandError, type Command } from "../command.js";

export const command: Command = {
  help: "Usage: bulwark dev-cluster — not built yet (issue 3).",
  run() {
    return Promise.reject(new CommandError("not built yet (issue 3)", 1));
  },
};
