import { coordinatorVersion, openApiDocument } from "@havn/coordinator";

/** docs/openapi.json as the route table and the zod schemas say it should be. */
export function renderOpenApiDoc(): string {
  return `${JSON.stringify(openApiDocument(coordinatorVersion), null, 2)}\n`;
}
