import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { renderErrorsDoc } from "../../../scripts/errors-doc.ts";

it("docs/errors.md matches the error catalog (run `npm run docs:errors` after changing codes)", () => {
  const doc = readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");
  expect(doc).toBe(renderErrorsDoc());
});
