// `npm run docs`: regenerates the committed reference files that tests check for drift.
import { writeFileSync } from "node:fs";
import { renderErrorsDoc } from "./errors-doc.ts";
import { renderOpenApiDoc } from "./openapi-doc.ts";
import { renderWireSchemas } from "./wire-schemas.ts";

writeFileSync(new URL("../docs/errors.md", import.meta.url), renderErrorsDoc());
writeFileSync(new URL("../docs/wire-schemas.json", import.meta.url), renderWireSchemas());
writeFileSync(new URL("../docs/openapi.json", import.meta.url), renderOpenApiDoc());
console.log("wrote docs/errors.md, docs/wire-schemas.json and docs/openapi.json");
