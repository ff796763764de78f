import { z } from "zod";
import { errorCatalog, type ErrorCode } from "@havn/protocol";
import { routes, type RouteSpec } from "./route-table.js";
import { errorResponseSchema, requestSchemas, responseSchemas } from "./schemas.js";

type JsonSchema = Record<string, unknown>;

const componentUri = (id: string) => `#/components/schemas/${id}`;

/** `$schema` and `$id` belong to standalone documents, not to schemas inside OpenAPI. */
function bare(schema: JsonSchema): JsonSchema {
  const { $schema: _s, $id: _i, ...rest } = schema;
  return rest;
}

/**
 * Named schemas as OpenAPI components, cross-referenced: request bodies as clients may send them
 * (zod's input side: unknown keys allowed where the route drops them), responses as the
 * coordinator writes them.
 */
function components(): { schemas: Record<string, JsonSchema>; refOf: Map<z.ZodType, string> } {
  const refOf = new Map<z.ZodType, string>();
  const schemas: Record<string, JsonSchema> = {};
  for (const [named, io] of [
    [requestSchemas, "input"],
    [responseSchemas, "output"],
  ] as const) {
    const registry = z.registry<{ id: string }>();
    for (const [id, schema] of Object.entries(named)) {
      registry.add(schema, { id });
      refOf.set(schema, componentUri(id));
    }
    const out = z.toJSONSchema(registry, { io, uri: componentUri, unrepresentable: "any" }) as {
      schemas: Record<string, JsonSchema>;
    };
    for (const [id, schema] of Object.entries(out.schemas)) schemas[id] = bare(schema);
  }
  return { schemas, refOf };
}

/** The error answers of a route, one per HTTP status, each naming its catalog codes. */
function errorResponses(codes: readonly ErrorCode[]): Record<string, unknown> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = errorCatalog[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus.entries()]
      .sort(([a], [b]) => a - b)
      .map(([status, list]) => [
        String(status),
        {
          description: list.map((c) => `\`${c}\`: ${errorCatalog[c].description}`).join("\n\n"),
          content: { "application/json": { schema: { $ref: componentUri("Error") } } },
        },
      ]),
  );
}

function operation(spec: RouteSpec, refOf: Map<z.ZodType, string>, deprecated: boolean) {
  const ref = (schema: z.ZodType) => {
    const uri = refOf.get(schema);
    return uri ? { $ref: uri } : bare(z.toJSONSchema(schema, { unrepresentable: "any" }) as JsonSchema);
  };
  const parameters = spec.params
    ? Object.entries(spec.params.shape).map(([name, schema]) => {
        const json = bare(z.toJSONSchema(schema as z.ZodType, { io: "input", unrepresentable: "any" }) as JsonSchema);
        const { description, ...rest } = json;
        return { name, in: "path", required: true, description, schema: rest };
      })
    : undefined;
  const ok =
    "schema" in spec.response
      ? {
          description: spec.response.description,
          content: {
            "application/json": { schema: ref(spec.response.schema) },
            ...(spec.response.stream ? { [spec.response.stream]: { schema: { type: "string" } } } : {}),
          },
        }
      : {
          description: spec.response.description,
          content: { [spec.response.contentType]: { schema: { type: "string" } } },
        };
  return {
    operationId: deprecated ? `${spec.operationId}Alias` : spec.operationId,
    tags: [spec.tag],
    summary: spec.summary,
    ...(spec.description || deprecated
      ? {
          description: [deprecated ? `Deprecated alias of \`${spec.path}\`.` : "", spec.description ?? ""]
            .filter(Boolean)
            .join(" "),
        }
      : {}),
    ...(deprecated ? { deprecated: true } : {}),
    ...(parameters ? { parameters } : {}),
    ...(spec.body
      ? { requestBody: { required: true, content: { "application/json": { schema: ref(spec.body) } } } }
      : {}),
    responses: {
      ...(spec.path === "/health"
        ? { "200": ok, "503": { description: "`failing`: the same body.", content: ok.content } }
        : { "200": ok }),
      ...errorResponses(spec.errors),
    },
  };
}

/**
 * The coordinator's OpenAPI 3.1 document, generated from the route table and the zod schemas the
 * routes validate with. Served at `/openapi.json`, committed as `docs/openapi.json` (a test fails
 * when the two drift) and rendered at `/docs`.
 */
export function openApiDocument(version: string): Record<string, unknown> {
  const { schemas, refOf } = components();
  refOf.set(errorResponseSchema, componentUri("Error"));
  const paths: Record<string, Record<string, unknown>> = {};
  for (const spec of Object.values(routes) as RouteSpec[]) {
    for (const [path, deprecated] of [
      [spec.path, false],
      ...(spec.aliases ?? []).map((a) => [a, true] as const),
    ] as const) {
      paths[path] = { ...paths[path], [spec.method.toLowerCase()]: operation(spec, refOf, deprecated) };
    }
  }
  paths["/nodes/connect"] = {
    get: {
      operationId: "connectNode",
      tags: ["Nodes"],
      summary: "The native node protocol (WebSocket)",
      description:
        "Nodes connect here over one outbound WebSocket: a challenge, a signed hello, then heartbeats, " +
        "jobs, tokens and results. The messages are in docs/node-protocol.md and docs/wire-schemas.json.",
      responses: { "101": { description: "Switching protocols: the node protocol begins." } },
    },
  };
  return {
    openapi: "3.1.0",
    info: {
      title: "havn coordinator",
      version,
      description:
        "A network that turns independently owned GPUs into one paid, verifiable AI service. The OpenAI " +
        "routes work with any OpenAI client; every error carries a code from the catalog (docs/errors.md).",
      license: { name: "MIT", identifier: "MIT" },
    },
    tags: [
      { name: "OpenAI", description: "OpenAI-compatible inference." },
      { name: "Jobs", description: "havn's own view of a job: status, receipt, output." },
      { name: "Log", description: "The hash-chained execution log." },
      { name: "Operators", description: "Health, metrics, nodes and this documentation." },
      { name: "Accounts", description: "Sign-in, accounts and API keys." },
      { name: "Ledger", description: "$HAI balances, transactions, withdrawals; admins' credits and debits." },
      { name: "Workflows", description: "The workflow registry: publish, find, earnings; admins' flags." },
      {
        name: "Stake",
        description: "Bonds and unbonds, collateral floors, availability promises, the monthly pool.",
      },
      { name: "Governance", description: "The parameter table, proposals and stake-weighted votes, admins' acts." },
      { name: "Nodes", description: "Where nodes connect." },
    ],
    paths,
    components: { schemas },
  };
}
