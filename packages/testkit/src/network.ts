import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildApp, type CoordinatorApp, type CoordinatorOptions } from "@havn/coordinator";
import { BuiltinBackend, type Backend } from "@havn/engine";
import { NodeAgent } from "@havn/node-agent";
import { generateKeyPair, type Hardware, type KeyPair, type NodeCredential } from "@havn/protocol";
import type { Logger } from "pino";
import { openStore, type Store } from "@havn/store";
import { openTestStore, type StoreKind } from "@havn/store/testing";
import { ScriptedBackend, type ScriptedBackendOptions } from "./backends.js";

/** What every node spec may set besides its backend. */
interface NodeSpecCommon {
  readonly name?: string;
  /** The node's key. Default: a fresh one. */
  readonly keys?: KeyPair;
  /** How often the node checks its backend, in ms. Default 5 000 (as `havn node`). */
  readonly healthCheckMs?: number;
  /** What the node joins with; null: nothing. Default: the network's (`NetworkOptions.nodeCredential`). */
  readonly credential?: NodeCredential | null;
}

/** A node to start: the built-in engine, a scripted backend, or any backend you made. */
export type NodeSpec =
  | ({ readonly backend: "builtin"; readonly slots?: number } & NodeSpecCommon)
  | ({ readonly backend: "scripted" } & ScriptedBackendOptions & NodeSpecCommon)
  | ({ readonly backend: Backend } & NodeSpecCommon);

export interface NetworkOptions {
  /** `sqlite` (in memory, default) or `postgres` (needs `pgAdminUrl`), or a store you opened. */
  readonly store?: StoreKind | Store;
  readonly pgAdminUrl?: string;
  readonly nodes?: readonly NodeSpec[];
  readonly coordinator?: CoordinatorOptions;
  /** Where the coordinator and the nodes log (pino). Default: nowhere. */
  readonly logger?: Logger;
  /**
   * What nodes join with. Default: the coordinator's join token when it has one (a production
   * network: `coordinator: { mode: "production", joinToken }`); none in dev mode.
   */
  readonly nodeCredential?: NodeCredential;
}

export interface TestNode {
  readonly agent: NodeAgent;
  readonly backend: Backend;
}

export interface Network {
  /** The coordinator's base URL, e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
  readonly coordinator: CoordinatorApp;
  readonly nodes: TestNode[];
  addNode(spec: NodeSpec): Promise<TestNode>;
  /** Waits until `count` nodes are online at the coordinator. */
  waitForNodes(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const testHardware: Hardware = {
  cpu: { model: "testkit", cores: 2 },
  memory_mb: 1024,
  gpus: [],
  compute_class: "S",
};

/**
 * A whole havn network in this process: a coordinator listening on loopback and nodes connected
 * to it over real WebSockets. Our integration tests use it; so can yours.
 */
export async function startNetwork(options: NetworkOptions = {}): Promise<Network> {
  const dataDir = mkdtempSync(join(tmpdir(), "havn-testkit-"));
  const store =
    typeof options.store === "object"
      ? options.store
      : options.store === "postgres"
        ? await openTestStore("postgres", options.pgAdminUrl)
        : await openStore({ sqlitePath: ":memory:" });
  const coordinator = await buildApp({
    logLevel: (process.env.HAVN_TEST_LOG as "info" | undefined) ?? "silent",
    // Dev mode unless the test asks for production: every request acts as the dev account, whose
    // balance dev mode funds. A production network is free unless the test turns the ledger on
    // (its accounts start with nothing).
    mode: "dev",
    dataDir,
    ...(options.coordinator?.mode === "production" && !options.coordinator.ledger
      ? { ledger: { enabled: false } }
      : {}),
    ...options.coordinator,
    store,
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const url = await coordinator.app.listen({ port: 0, host: "127.0.0.1" });
  const nodes: TestNode[] = [];
  let counter = 0;

  async function addNode(spec: NodeSpec): Promise<TestNode> {
    counter++;
    const backend: Backend =
      spec.backend === "builtin"
        ? new BuiltinBackend({ slots: spec.slots })
        : spec.backend === "scripted"
          ? new ScriptedBackend(spec)
          : spec.backend;
    const agent = new NodeAgent({
      coordinatorUrl: url,
      backend,
      keys: spec.keys ?? generateKeyPair(),
      name: spec.name ?? `test-node-${counter}`,
      hardware: testHardware,
      reconnectMs: 50,
      maxReconnectMs: 500,
      healthCheckMs: spec.healthCheckMs,
      credential:
        spec.credential === null
          ? undefined
          : (spec.credential ??
            options.nodeCredential ??
            (options.coordinator?.joinToken ? { join_token: options.coordinator.joinToken } : undefined)),
      logger: options.logger,
    });
    await agent.start();
    await agent.ready;
    const node = { agent, backend };
    nodes.push(node);
    return node;
  }

  for (const spec of options.nodes ?? [{ backend: "builtin" as const }]) await addNode(spec);

  return {
    url,
    coordinator,
    nodes,
    addNode,
    async waitForNodes(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (coordinator.registry.size < count) {
        if (Date.now() > deadline)
          throw new Error(`waitForNodes: ${coordinator.registry.size} of ${count} nodes online`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      for (const n of nodes) await n.agent.stop();
      await coordinator.close();
      await store.close();
      for (const n of nodes) await n.backend.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
