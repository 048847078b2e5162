// Placeholder until issue 10 lands: says so plainly instead of pretending to work.
import { CommandError, type Command } from "../command.js";

export const command: Command = {
  help: "Usage: bulwark up — not built yet (issue 10).",
  run() {
    return Promise.reject(new CommandError("not built yet (issue 10)", 1));
  },
};
