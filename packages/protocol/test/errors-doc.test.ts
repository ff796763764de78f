import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { renderErrorsDoc } from "../../../scripts/errors-doc.ts";
import { renderWireSchemas } from "../../../scripts/wire-schemas.ts";

const read = (path: string) => readFileSync(new URL(`../../../${path}`, import.meta.url), "utf8");

it("docs/errors.md matches the error catalog (run `npm run docs` after changing codes)", () => {
  expect(read("docs/errors.md")).toBe(renderErrorsDoc());
});

it("docs/wire-schemas.json matches the zod schemas (run `npm run docs` after changing the protocol)", () => {
  expect(read("docs/wire-schemas.json")).toBe(renderWireSchemas());
});
