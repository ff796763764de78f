#!/usr/bin/env node
// The `havn` binary: runs the TypeScript sources through tsx (no build step to forget).
import { register } from "tsx/esm/api";

register();
const { run } = await import("../src/main.ts");
await run(process.argv);
