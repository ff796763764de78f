#!/usr/bin/env node
// The `havn` binary: the CLI compiled to JavaScript (dist/, built by `npm ci` through `prepare`, or
// by `npm run build`). Nothing is transpiled at start-up, and each command loads its own code.
let cli;
try {
  cli = await import("../dist/main.js");
} catch (err) {
  if (err?.code !== "ERR_MODULE_NOT_FOUND" || !String(err.message).includes("dist")) throw err;
  process.stderr.write("error: havn is not built yet: run `npm run build` in the havn checkout (npm ci does it).\n");
  process.exit(1);
}
await cli.run(process.argv);
