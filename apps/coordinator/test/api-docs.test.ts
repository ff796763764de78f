import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCatalog, type ErrorCode } from "@havn/protocol";
import { startNetwork, type Network } from "@havn/testkit";
import { renderOpenApiDoc } from "../../../scripts/openapi-doc.ts";
import { routes, type RouteSpec } from "../src/api/route-table.ts";

const committed = readFileSync(new URL("../../../docs/openapi.json", import.meta.url), "utf8");
const document = JSON.parse(committed) as {
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  components: { schemas: Record<string, unknown> };
};

let net: Network;
beforeAll(async () => {
  net = await startNetwork({ nodes: [{ backend: "scripted", name: "docs-node" }] });
});
afterAll(() => net?.close());

describe("the API document", () => {
  it("docs/openapi.json matches the route table and schemas (run `npm run docs` after changing a route)", () => {
    expect(committed).toBe(renderOpenApiDoc());
  });

  it("is a valid OpenAPI 3.1 document, and /openapi.json serves it", async () => {
    expect(await new Validator().validate(JSON.parse(committed))).toEqual({ valid: true });
    const served = await fetch(`${net.url}/openapi.json`);
    expect(served.headers.get("content-type")).toMatch(/application\/json/);
    expect(await served.json()).toEqual(JSON.parse(committed));
  });

  it("documents every error code a route answers with, with that code's status", () => {
    for (const spec of Object.values(routes) as RouteSpec[]) {
      const responses = document.paths[spec.path]![spec.method.toLowerCase()]!.responses;
      for (const code of spec.errors) {
        const entry = responses[String(errorCatalog[code].status)] as { description: string };
        expect(entry.description).toContain(`\`${code}\``);
      }
    }
  });

  it("every documented path answers on the coordinator (aliases too)", async () => {
    for (const spec of Object.values(routes) as RouteSpec[]) {
      for (const path of [spec.path, ...(spec.aliases ?? [])]) {
        const url = path.replace("{id}", "job-000000000000000000000000").replace("{cid}", "x").replace("{seq}", "1");
        const r = await net.coordinator.app.inject({
          method: spec.method,
          url,
          ...(spec.method === "POST" ? { payload: {} } : {}),
        });
        const code = String(r.headers["content-type"]).includes("json")
          ? (r.json() as { error?: { code?: string } }).error?.code
          : undefined;
        expect([path, code]).not.toEqual([path, "REQUEST_ROUTE_NOT_FOUND"]);
      }
    }
  });
});

describe("real answers match the documented schemas", () => {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema(document, "openapi");
  const check = (schema: string, value: unknown) => {
    const validate = ajv.getSchema(`openapi#/components/schemas/${schema}`)!;
    const ok = validate(value);
    expect(ok ? [] : validate.errors).toEqual([]);
  };
  const get = async (path: string) => (await fetch(`${net.url}${path}`)).json();

  it("completions, jobs, the log, models, nodes, health", async () => {
    const openai = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: "x", maxRetries: 0 });
    const chat = await openai.chat.completions.create({
      model: "havn-tiny",
      messages: [{ role: "user", content: "document me" }],
      max_tokens: 8,
    });
    check("ChatCompletion", chat);
    check("Completion", await openai.completions.create({ model: "havn-tiny", prompt: "and me", max_tokens: 8 }));
    const job = (await get(`/v1/jobs/${chat.id}`)) as { receipt: { log: { seq: number } } };
    check("Job", job);
    check("LogEntry", await get(`/v1/log/${job.receipt.log.seq}`));
    check("ModelList", await get("/v1/models"));
    check("NodeList", await get("/v1/nodes"));
    check("Health", await get("/health"));
  });

  it("errors, each with the code the route documents", async () => {
    const cases: [RouteSpec, string, ErrorCode][] = [
      [routes.getJob, "/v1/jobs/job-000000000000000000000000", "JOB_NOT_FOUND"],
      [routes.getLogEntry, "/v1/log/424242", "LOG_ENTRY_NOT_FOUND"],
      [routes.getOutput, "/v1/outputs/nothing", "OUTPUT_NOT_FOUND"],
    ];
    for (const [spec, path, code] of cases) {
      const body = (await get(path)) as { error: { code: string } };
      check("Error", body);
      expect(body.error.code).toBe(code);
      expect(spec.errors).toContain(code);
    }
    const bad = await fetch(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }),
    });
    const body = (await bad.json()) as { error: { code: ErrorCode } };
    check("Error", body);
    expect(routes.chatCompletions.errors).toContain(body.error.code);
  });
});

describe("/docs", () => {
  it("renders the document from files served here: nothing from the internet", async () => {
    const page = await fetch(`${net.url}/docs`);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).not.toMatch(/https?:\/\//);
    const assets = [...html.matchAll(/(?:src|href)="(\/docs\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.sort()).toEqual([
      "/docs/favicon-32x32.png",
      "/docs/init.js",
      "/docs/swagger-ui-bundle.js",
      "/docs/swagger-ui.css",
    ]);
    for (const asset of assets) {
      const r = await fetch(`${net.url}${asset}`);
      expect([asset, r.status]).toEqual([asset, 200]);
      expect((await r.arrayBuffer()).byteLength).toBeGreaterThan(100);
    }
    expect(await (await fetch(`${net.url}/docs/init.js`)).text()).toContain('url: "/openapi.json"');
    // No inline script: the page's Content-Security-Policy lets only scripts from here run.
    expect(html).not.toMatch(/<script>/);
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    const traversal = await fetch(`${net.url}/docs/..%2Fpackage.json`);
    expect(traversal.status).toBe(404);
  });
});
