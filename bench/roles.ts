// One benchmark process: `tsx bench/roles.ts <role> '<json options>'`; prints `READY <url>` when serving.
import { mkdtempSync } from "node:fs";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildApp } from "@havn/coordinator";
import { createOpenAIServer, OpenAIBackend } from "@havn/engine";
import { NodeAgent } from "@havn/node-agent";
import { generateKeyPair, type Hardware } from "@havn/protocol";
import { ScriptedBackend } from "@havn/testkit";

const [role, json] = isMainThread ? process.argv.slice(2) : (workerData as string[]);
const o = JSON.parse(json ?? "{}") as {
  databaseUrl?: string;
  coordinator?: string;
  backendUrl?: string;
  nodes?: number;
  slots?: number;
  signatureWorkers?: number;
  tokenDelayMs?: number;
  tokenDelayJitterMs?: number;
  /** Where the coordinator's data directory goes (the bench removes it when done). */
  scratch?: string;
};
const hardware: Hardware = { cpu: { model: "bench", cores: 2 }, memory_mb: 1024, gpus: [], compute_class: "S" };

async function startNodes(url: string, count: number, makeBackend: () => ScriptedBackend | OpenAIBackend) {
  const agents: NodeAgent[] = [];
  for (let i = 0; i < count; i++) {
    const agent = new NodeAgent({
      coordinatorUrl: url,
      backend: makeBackend(),
      keys: generateKeyPair(),
      name: `bench-${i}-${process.pid}`,
      hardware,
    });
    await agent.start();
    agents.push(agent);
  }
  await Promise.all(agents.map((a) => a.ready));
  return agents;
}

async function coordinator() {
  const app = await buildApp({
    dataDir: mkdtempSync(join(o.scratch ?? tmpdir(), "coordinator-")),
    databaseUrl: o.databaseUrl,
    logLevel: "warn",
    ...(o.signatureWorkers === undefined ? {} : { signatureWorkers: o.signatureWorkers }),
  });
  return { app, url: await app.app.listen({ port: 0, host: "127.0.0.1" }) };
}

switch (role) {
  case "backend": {
    // The node's inference backend: answering at once isolates havn's own cost; paced
    // (`tokenDelayMs` per token, no CPU) stands for a model served on a GPU elsewhere.
    const server = createOpenAIServer(
      new ScriptedBackend({
        tokens: 8,
        slots: 1024,
        tokenDelayMs: o.tokenDelayMs ?? 0,
        tokenDelayJitterMs: o.tokenDelayJitterMs ?? 0,
      }),
    );
    console.log(`READY ${await server.listen({ port: 0, host: "127.0.0.1" })}`);
    break;
  }
  case "coordinator": {
    console.log(`READY ${(await coordinator()).url}`);
    break;
  }
  case "node": {
    await startNodes(
      o.coordinator!,
      1,
      () => new OpenAIBackend({ baseUrl: `${o.backendUrl}/v1`, slots: o.slots ?? 64 }),
    );
    console.log(`READY ${o.coordinator}`);
    break;
  }
  case "network": {
    // Coordinator and N nodes in one process, on a scripted backend that answers at once. The
    // nodes run on a worker thread: on a real network they are other machines, and their
    // signing should not be charged to the coordinator's event loop.
    const { url } = await coordinator();
    const worker = new Worker(new URL("./worker.mjs", import.meta.url), {
      workerData: ["nodes", JSON.stringify({ ...o, coordinator: url })],
    });
    await new Promise<void>((resolve, reject) => {
      worker.once("message", () => resolve());
      worker.once("error", reject);
    });
    console.log(`READY ${url}`);
    break;
  }
  case "nodes": {
    await startNodes(o.coordinator!, o.nodes ?? 50, () => new ScriptedBackend({ tokens: 8, slots: o.slots ?? 8 }));
    parentPort?.postMessage("ready");
    break;
  }
  default:
    console.error(`unknown role ${role}`);
    process.exit(2);
}
