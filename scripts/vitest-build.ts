import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * Vitest global setup: builds dist/ before any test runs (incremental — ~0.5 s when nothing
 * changed). Tests import the sources; the CLI tests run the real, compiled `havn` binary, which
 * must never be older than the sources beside it.
 */
export default function setup(): void {
  execFileSync(process.execPath, [fileURLToPath(new URL("./build.mjs", import.meta.url)), "--quiet"], {
    stdio: "inherit",
  });
}
