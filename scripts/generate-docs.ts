// `npm run docs`: regenerates the committed reference files that tests check for drift.
// HAVN_DOCS_OUT=<dir> writes them there instead of docs/ (a test runs the command that way).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { renderErrorsDoc } from "./errors-doc.ts";
import { renderOpenApiDoc } from "./openapi-doc.ts";
import { renderWireSchemas } from "./wire-schemas.ts";

const out = process.env.HAVN_DOCS_OUT || fileURLToPath(new URL("../docs", import.meta.url));
mkdirSync(out, { recursive: true });
writeFileSync(join(out, "errors.md"), renderErrorsDoc());
writeFileSync(join(out, "wire-schemas.json"), renderWireSchemas());
writeFileSync(join(out, "openapi.json"), renderOpenApiDoc());
console.log(`wrote errors.md, wire-schemas.json and openapi.json in ${out}`);
