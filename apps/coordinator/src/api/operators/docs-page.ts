import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { FastifyInstance } from "fastify";

/** Swagger UI's files, served from the npm package: nothing is fetched from a CDN, so `/docs` works offline. */
const assets: Readonly<Record<string, string>> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "favicon-32x32.png": "image/png",
};

const page = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>havn coordinator API</title>
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" />
    <link rel="stylesheet" href="/docs/swagger-ui.css" />
  </head>
  <body>
    <noscript>This page renders <a href="/openapi.json">/openapi.json</a>, the OpenAPI document; it needs JavaScript.</noscript>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js"></script>
    <script src="/docs/init.js"></script>
  </body>
</html>
`;

/** Starts Swagger UI on the document; a file, not an inline script, so the page's CSP allows only 'self'. */
const init = `window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null });\n`;

/** `GET /docs`: the OpenAPI document rendered by Swagger UI, with its assets under `/docs/`. */
export function registerDocsPage(app: FastifyInstance): void {
  const dir = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  const cache = new Map<string, Promise<Buffer>>();
  const config = { auth: "public" as const };
  app.get("/docs", { config }, async (_request, reply) => reply.type("text/html; charset=utf-8").send(page));
  app.get("/docs/init.js", { config }, async (_request, reply) =>
    reply.type("text/javascript; charset=utf-8").send(init),
  );
  app.get<{ Params: { file: string } }>("/docs/:file", { config }, async (request, reply) => {
    const type = Object.hasOwn(assets, request.params.file) ? assets[request.params.file] : undefined;
    if (type === undefined) return reply.callNotFound();
    let bytes = cache.get(request.params.file);
    if (bytes === undefined) {
      bytes = readFile(join(dir, request.params.file));
      cache.set(request.params.file, bytes);
    }
    return reply
      .type(type)
      .header("cache-control", "public, max-age=86400")
      .send(await bytes);
  });
}
