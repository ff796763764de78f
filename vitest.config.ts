import { defineConfig } from "vitest/config";

/** Workspace packages resolve to their TypeScript sources in tests, never to a (maybe stale) dist/. */
const conditions = ["havn-source"];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ["packages/*/test/**/*.test.ts", "apps/*/test/**/*.test.ts"],
    // node-llama-cpp's native addon and embedded PostgreSQL want real processes, not worker threads.
    pool: "forks",
    globalSetup: ["scripts/vitest-build.ts", "packages/store/test/global-setup.ts"],
    reporters: ["default", "./scripts/summary-reporter.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: more forks only make each file slower.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
