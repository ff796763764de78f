import { readFileSync } from "node:fs";
import { HavnError } from "@havn/protocol";

/**
 * A secret from the environment: `NAME`, or the contents of the file `NAME_FILE` names (how
 * Docker and systemd hand secrets over). Never from a flag alone: `ps` shows a process's
 * arguments to every user of the machine.
 */
export function envSecret(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const direct = env[name];
  if (direct) return direct;
  const file = env[`${name}_FILE`];
  if (!file) return undefined;
  try {
    return readFileSync(file, "utf8").trim() || undefined;
  } catch (err) {
    throw new HavnError("CONFIG_INVALID", `${name}_FILE names a file that cannot be read: ${file}.`, { cause: err });
  }
}

/** Reads all of standard input (a password piped in: `--password-stdin`). */
export async function readStdin(): Promise<string> {
  let text = "";
  for await (const chunk of process.stdin) text += String(chunk);
  return text.replace(/\r?\n$/, "");
}
