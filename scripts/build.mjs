#!/usr/bin/env node
// `npm run build` (and `npm ci`, through `prepare`): compiles every workspace's src/ to dist/ with
// `tsc -b` (incremental: a build with nothing changed only checks timestamps), then copies what tsc
// does not emit — SQL migrations, plain `.mjs` helpers, any other non-TypeScript file under src/ —
// to the same place under dist/, where the compiled modules look for them beside themselves.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const quiet = process.argv.includes("--quiet");
const started = performance.now();

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const result = spawnSync(process.execPath, [tsc, "-b", join(root, "tsconfig.build.json")], { stdio: "inherit" });
if (result.status !== 0) {
  process.stderr.write("havn build: the TypeScript build failed (above).\n");
  process.exit(result.status ?? 1);
}

/** Copies every non-TypeScript file under `from` to the same relative place under `to`, when newer. */
function copyAssets(from, to) {
  let copied = 0;
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory()) copied += copyAssets(source, target);
    else if (!/\.(c|m)?ts$/.test(entry.name) || entry.name.endsWith(".d.ts")) {
      let stale = true;
      try {
        stale = statSync(target).mtimeMs < statSync(source).mtimeMs;
      } catch {
        // not copied yet
      }
      if (stale) {
        mkdirSync(dirname(target), { recursive: true });
        copyFileSync(source, target);
        copied++;
      }
    }
  }
  return copied;
}

const workspaces = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).workspaces;
let copied = 0;
for (const workspace of workspaces) copied += copyAssets(join(root, workspace, "src"), join(root, workspace, "dist"));

if (!quiet) {
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(
    `havn build: ${workspaces.length} workspaces compiled to dist/ in ${seconds} s` +
      `${copied ? `, ${copied} asset${copied === 1 ? "" : "s"} copied` : ""} (${relative(process.cwd(), root) || "."})\n`,
  );
}
