import { homedir } from "node:os";
import { join } from "node:path";

/** The processes that keep state of their own; each gets its own directory, so no two share a key. */
export type Role = "up" | "coordinator" | "node" | "serve-model" | "validator";

/**
 * Where a role keeps its state (database, keys, generated models, caches) unless told otherwise
 * with `--data-dir`: `$HAVN_HOME/<role>` when set, else `$XDG_DATA_HOME/havn/<role>` when that is
 * set, else `~/.havn/<role>`. One directory per role, so `havn up` and `havn node` started in the
 * same folder never share a node key (they used to share `./data/node.key` and knock each other
 * off the coordinator forever).
 */
export function defaultDataDir(role: Role, env: NodeJS.ProcessEnv = process.env): string {
  if (env.HAVN_HOME) return join(env.HAVN_HOME, role);
  if (env.XDG_DATA_HOME) return join(env.XDG_DATA_HOME, "havn", role);
  return join(homedir(), ".havn", role);
}

/** The directory earlier versions kept every role's state in, relative to the working directory. */
export const legacyDataDir = "data";
