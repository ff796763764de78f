// One benchmark process that is not the `havn` CLI: `tsx bench/roles.ts <role> '<json options>'`;
// prints `READY <url>` when serving. The coordinator and the openai node of the bench are the real
// CLI (`havn coordinator`, `havn node`), started by run.ts.
import { Agent, createServer, request } from "node:http";
import { createOpenAIServer } from "@havn/engine";
import { NodeAgent } from "@havn/node-agent";
import { WebSocket, WebSocketServer } from "ws";
import { generateKeyPair, protocolVersion, sign, type Hardware, type HelloPayload } from "@havn/protocol";
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
  /** The model a fleet's nodes advertise. */
  model?: string;
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
  case "fleet": {
    // An idle fleet: `nodes` node connections that join (challenge, signed hello) and then only
    // send heartbeats — the load a large network's idle nodes put on a coordinator. They advertise
    // `model`, which the bench's jobs never ask for: routable, and never sent a job. Against a
    // plain `ws` server (role `plain-ws`) the same clients do the same.
    const url = `${o.coordinator!.replace(/^http/, "ws")}/nodes/connect`;
    const total = o.nodes ?? 2_500;
    let welcomed = 0;
    const heartbeatFrame = JSON.stringify({
      v: protocolVersion,
      type: "heartbeat",
      in_flight: [],
      busy_slots: 0,
      available: true,
      backend: { ok: true },
    });
    const open = (i: number) =>
      new Promise<void>((resolve) => {
        const keys = generateKeyPair();
        const socket = new WebSocket(url);
        const send = (m: object) => socket.send(JSON.stringify({ v: protocolVersion, ...m }));
        socket.on("message", (data) => {
          const msg = JSON.parse(String(data)) as { type: string; nonce?: string; heartbeat_interval_ms?: number };
          if (msg.type === "challenge") {
            const payload: HelloPayload = {
              nonce: msg.nonce!,
              node_key: keys.publicKey,
              name: `fleet-${process.pid}-${i}`,
              agent_version: "bench",
              capabilities: {
                backend: "bench",
                engine_version: "1",
                models: [
                  {
                    name: o.model ?? "havn-tiny",
                    tasks: ["chat", "completion"],
                    context_length: 2048,
                    model_hash: "0".repeat(64),
                  },
                ],
                slots: 8,
              },
              hardware,
              available: true,
            };
            send({
              type: "hello",
              payload,
              signature: sign("hello", payload, keys.secretKey),
              ...(o.joinToken ? { credential: { join_token: o.joinToken } } : {}),
            });
          } else if (msg.type === "welcome") {
            welcomed++;
            // The fleet stands in for other machines: each beat sends one frame made once, so
            // the fleet's own CPU takes as little as it can from the coordinator's two cores.
            const beat = setInterval(() => socket.send(heartbeatFrame), msg.heartbeat_interval_ms ?? 5_000);
            socket.on("close", () => clearInterval(beat));
            resolve();
          }
        });
        socket.on("error", () => resolve());
      });
    // At most 100 joins at a time: a fleet starting up, not a flood.
    for (let i = 0; i < total; i += 100)
      await Promise.all(Array.from({ length: Math.min(100, total - i) }, (_, k) => open(i + k)));
    console.log(`READY ${welcomed}`);
    break;
  }
  case "plain-ws": {
    // The reference for the fleet: a bare `ws` server that answers a hello and parses heartbeats —
    // no signature, no database, no routing.
    const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", path: "/nodes/connect" });
    let beats = 0;
    wss.on("connection", (socket) => {
      socket.send(
        JSON.stringify({ v: protocolVersion, type: "challenge", nonce: Math.random().toString(36).slice(2) }),
      );
      socket.on("message", (data) => {
        const msg = JSON.parse(String(data)) as { type: string };
        if (msg.type === "hello")
          socket.send(
            JSON.stringify({ v: protocolVersion, type: "welcome", node_key: "x", heartbeat_interval_ms: 5_000 }),
          );
        else if (msg.type === "heartbeat") beats++;
      });
    });
    await new Promise<void>((resolve) => wss.on("listening", resolve));
    console.log(`READY http://127.0.0.1:${(wss.address() as { port: number }).port} ${beats}`);
    break;
  }
  default:
    console.error(`unknown role ${role}`);
    process.exit(2);
}
