// One benchmark process that is not the `havn` CLI: `tsx bench/roles.ts <role> '<json options>'`;
// prints `READY <url>` when serving. The coordinator and the openai node of the bench are the real
// CLI (`havn coordinator`, `havn node`), started by run.ts.
import { Agent, createServer, request } from "node:http";
import { createOpenAIServer } from "@havn/engine";
import { NodeAgent } from "@havn/node-agent";
import { generateKeyPair, type Hardware } from "@havn/protocol";
import { ScriptedBackend } from "@havn/testkit";

const [role, json] = process.argv.slice(2);
const o = JSON.parse(json ?? "{}") as {
  coordinator?: string;
  target?: string;
  nodes?: number;
  slots?: number;
  tokenDelayMs?: number;
  tokenDelayJitterMs?: number;
  /** The coordinator's join token, which nodes join with. */
  joinToken?: string;
};
const hardware: Hardware = { cpu: { model: "bench", cores: 2 }, memory_mb: 1024, gpus: [], compute_class: "S" };

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
  case "proxy": {
    // The reference hop: a minimal reverse proxy (keep-alive to its target, bodies streamed, no
    // parsing, no storage). Two in a row have havn's shape — client → coordinator → node → backend —
    // with none of its work.
    const target = new URL(o.target!);
    const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
    const server = createServer((req, res) => {
      const upstream = request(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers, agent },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on("error", () => res.writeHead(502).end());
      req.pipe(upstream);
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    console.log(`READY http://127.0.0.1:${(server.address() as { port: number }).port}`);
    break;
  }
  case "nodes": {
    // N nodes on a scripted backend that answers at once, in one process: on a real network they
    // are other machines.
    const agents: NodeAgent[] = [];
    for (let i = 0; i < (o.nodes ?? 50); i++) {
      const agent = new NodeAgent({
        coordinatorUrl: o.coordinator!,
        backend: new ScriptedBackend({ tokens: 8, slots: o.slots ?? 8 }),
        // Keys from random seeds (generateKeyPair): Node 20 has been seen to deadlock in
        // generateKeyPairSync + JWK export in a long loop.
        keys: generateKeyPair(),
        name: `bench-${i}-${process.pid}`,
        hardware,
        ...(o.joinToken ? { credential: { join_token: o.joinToken } } : {}),
      });
      await agent.start();
      agents.push(agent);
    }
    await Promise.all(agents.map((a) => a.ready));
    console.log(`READY ${o.coordinator}`);
    break;
  }
  default:
    console.error(`unknown role ${role}`);
    process.exit(2);
}
