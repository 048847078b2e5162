// Placeholder until issue 4 lands: says so plainly instead of pretending to work.
import { CommandError, type Command } from "../command.js";

export const command: Command = {
  help: "Usage: bulwark agent — not built yet (issue 4).",
  run() {
    return Promise.reject(new CommandError("not built yet (issue 4)", 1));
  },
};
