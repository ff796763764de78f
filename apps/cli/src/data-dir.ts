import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { defaultDataDir, legacyDataDir, type Role } from "@havn/protocol/local";
import type { Logger } from "pino";

/** Files an earlier version of havn kept in `./data`, whichever role wrote them. */
const legacyFiles = ["havn.db", "coordinator.key", "node.key"];

/**
 * The directory a role keeps its state in: `--data-dir` when given, else its own directory under
 * `~/.havn` (see `defaultDataDir`). A `./data` left by an earlier version — where every role
 * shared one directory and one node key — is not used silently, nor ignored silently: the user
 * is told what it holds and how to keep using it.
 */
export function resolveDataDir(role: Role, given: string | undefined, log: Logger): string {
  if (given !== undefined) return resolve(given);
  const dir = defaultDataDir(role);
  const found = legacyFiles.filter((f) => existsSync(join(legacyDataDir, f)));
  if (found.length > 0) {
    log.warn(
      { legacyDir: resolve(legacyDataDir), files: found, dataDir: dir },
      `found ./${legacyDataDir} from an earlier havn (${found.join(", ")}); this ${role} now keeps its state in ${dir}. ` +
        `To go on with the old state, pass --data-dir ./${legacyDataDir}, or move its files into ${dir}`,
    );
  }
  return dir;
}
