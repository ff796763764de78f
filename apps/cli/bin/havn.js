#!/usr/bin/env node
// The `havn` binary: the CLI compiled to JavaScript (dist/, built by `npm ci` through `prepare`, or
// by `npm run build`). Nothing is transpiled at start-up, and each command loads its own code.
import { existsSync } from "node:fs";

const main = new URL("../dist/main.js", import.meta.url);
if (!existsSync(main)) {
  process.stderr.write("error: havn is not built yet: run `npm run build` in the havn checkout (npm ci does it).\n");
  process.exit(1);
}
const { run } = await import(main.href);
await run(process.argv);
