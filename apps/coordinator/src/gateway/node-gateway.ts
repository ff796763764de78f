import { ServerResponse, type IncomingMessage } from "node:http";
import type { FastifyBaseLogger } from "fastify";
import type { WebSocket } from "ws";
import {
  HavnError,
  nodeCloseCodes,
  nodeToCoordinatorSchema,
  protocolVersion,
  randomHex,
  verify,
  type CoordinatorMessageBody,
  type KeyPair,
  type NodeToCoordinator,
} from "@havn/protocol";
import type { CoordinatorConfig } from "../config.js";
import type { NodeSession } from "../nodes/node-registry.js";
import type { NodeService, NodeTransport } from "../nodes/node-service.js";
import type { CoordinatorMetrics } from "../telemetry/metrics.js";

type Msg<T extends NodeToCoordinator["type"]> = Extract<NodeToCoordinator, { type: T }>;

export interface NodeGatewayDeps {
  readonly nodes: NodeService;
  readonly config: CoordinatorConfig;
  readonly keys: KeyPair;
  readonly metrics: CoordinatorMetrics;
  readonly log: FastifyBaseLogger;
}

/** WebSocket close codes (4000–4999 are the application's); the node protocol defines them. */
export const closeCodes = nodeCloseCodes;

/**
 * Lets go of what the HTTP upgrade left tied to a WebSocket for its life. `@fastify/websocket`
 * routes the upgrade as a request with a placeholder response assigned to the TCP socket, and its
 * socket error listener closes over the request and reply: an idle node's connection kept the
 * request, its headers, the response, fastify's request and reply and a child logger (~3 KB of
 * heap a node, 30 MB for a fleet of 10,000). The gateway installs its own error listener.
 */
export function releaseUpgrade(socket: WebSocket, request: IncomingMessage): void {
  socket.removeAllListeners("error");
  const tcp = request.socket as (typeof request.socket & { _httpMessage?: unknown }) | null;
  const response = tcp?._httpMessage;
  if (tcp && response instanceof ServerResponse) response.detachSocket(tcp);
}

/** A WebSocket ping answered within `timeoutMs`: the connection is alive at the other end. */
function pingSocket(socket: WebSocket, timeoutMs: number): Promise<boolean> {
  if (socket.readyState !== socket.OPEN) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (alive: boolean) => {
      clearTimeout(timer);
      socket.off("pong", onPong);
      resolve(alive);
    };
    const onPong = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on("pong", onPong);
    try {
      socket.ping();
    } catch {
      done(false);
    }
  });
}

/**
 * The native node protocol on `/nodes/connect`, and nothing but the wire: a challenge, a signed
 * hello that proves the node holds its key, then frames parsed and handed to `NodeService`
 * (joining, heartbeats, tokens, results, loss). A malformed frame is answered with a
 * NODE_PROTOCOL_VIOLATION error and never crashes the coordinator; too many close the socket.
 */
export class NodeGateway {
  constructor(private readonly deps: NodeGatewayDeps) {}

  accept(socket: WebSocket): void {
    const { config, keys, metrics, log } = this.deps;
    // First: the socket is never without an error listener (`releaseUpgrade` removed the plugin's).
    socket.on("error", (err) => log.warn({ err }, "node socket error"));
    metrics.nodeConnections.inc();
    const nonce = randomHex(16);
    let session: NodeSession | undefined;
    let violations = 0;
    const send = (message: CoordinatorMessageBody) => {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ v: protocolVersion, ...message }));
    };
    const sendError = (err: HavnError, jobId?: string) =>
      send({
        type: "error",
        ...(jobId ? { job_id: jobId } : {}),
        code: err.code,
        message: err.shortMessage,
        retryable: err.retryable,
      });
    const violation = (message: string, details?: unknown) => {
      violations++;
      sendError(new HavnError("NODE_PROTOCOL_VIOLATION", message, { details }));
      if (violations >= config.maxProtocolViolations)
        socket.close(closeCodes.protocolViolation, "too many protocol violations");
    };

    let helloTimer: NodeJS.Timeout | undefined = setTimeout(() => {
      if (!session) socket.close(closeCodes.helloTimeout, "no hello within the timeout");
    }, config.helloTimeoutMs);
    const joined = () => {
      clearTimeout(helloTimer);
      helloTimer = undefined; // not held for the connection's life
    };
    send({ type: "challenge", nonce, coordinator_key: keys.publicKey });

    socket.on("message", (data, isBinary) => {
      if (isBinary) return violation("Binary frames are not part of the node protocol.");
      let raw: unknown;
      try {
        raw = JSON.parse(data.toString());
      } catch {
        return violation("The frame is not valid JSON.");
      }
      // A node of another protocol version is told so at its hello, and closed for good (until
      // upgraded, it would fail every job: its receipts and job specs are another version's).
      const version = (raw as { v?: unknown } | null)?.v;
      const isHello = (raw as { type?: unknown } | null)?.type === "hello";
      if (session === undefined && isHello && typeof version === "number" && version !== protocolVersion) {
        sendError(
          new HavnError(
            "NODE_PROTOCOL_VERSION",
            `This coordinator speaks node protocol ${protocolVersion}; the node speaks ${version}: upgrade havn on the node.`,
          ),
        );
        return socket.close(closeCodes.protocolVersion, "protocol version");
      }
      const parsed = nodeToCoordinatorSchema.safeParse(raw);
      if (!parsed.success) {
        return violation(
          "The frame does not match the node protocol.",
          parsed.error.issues.slice(0, 5).map((i) => ({ path: i.path.join("."), message: i.message })),
        );
      }
      const msg = parsed.data;
      if (session === undefined) {
        if (msg.type !== "hello") return violation("The first message must be hello.");
        void this.hello(msg, nonce, socket, send, sendError)
          .then((s) => {
            session = s;
            if (s) joined();
          })
          .catch((err: unknown) => {
            log.error({ err }, "hello failed");
            socket.close(1011, "internal error");
          });
        return;
      }
      if (msg.type === "hello") return violation("hello was already received on this connection.");
      this.handle(session, msg).catch((err: unknown) => {
        log.error({ err, node: session?.name }, "node message handling failed");
      });
    });

    socket.on("close", () => {
      metrics.nodeConnections.dec();
      joined();
      if (session) {
        this.deps.nodes
          .lost(session)
          .catch((err: unknown) => log.error({ err, node: session?.name }, "node loss handling failed"));
      }
    });
  }

  private async hello(
    msg: Msg<"hello">,
    nonce: string,
    socket: WebSocket,
    send: (m: CoordinatorMessageBody) => void,
    sendError: (e: HavnError) => void,
  ): Promise<NodeSession | undefined> {
    const { payload } = msg;
    if (
      payload.nonce !== nonce ||
      payload.node_key.length !== 43 ||
      !verify("hello", payload, msg.signature, payload.node_key)
    ) {
      sendError(new HavnError("NODE_AUTH_FAILED", "The hello signature does not verify for this challenge and key."));
      socket.close(closeCodes.authFailed, "authentication failed");
      return undefined;
    }
    const transport: NodeTransport = {
      send,
      close: (code, reason) => socket.close(code, reason),
      terminate: () => socket.terminate(),
      ping: (timeoutMs) => pingSocket(socket, timeoutMs),
      isOpen: () => socket.readyState === socket.OPEN,
    };
    return this.deps.nodes.join(
      {
        key: payload.node_key,
        name: payload.name,
        credential: msg.credential,
        capabilities: payload.capabilities,
        hardware: payload.hardware,
        available: payload.available,
      },
      transport,
    );
  }

  /** One frame from a joined node, handed to the node service. */
  private async handle(session: NodeSession, msg: NodeToCoordinator): Promise<void> {
    const { nodes, log } = this.deps;
    await nodes.heard(session, "attempt_id" in msg ? msg.attempt_id : undefined);
    switch (msg.type) {
      case "heartbeat":
        return nodes.heartbeat(session, {
          inFlight: msg.in_flight,
          ...(msg.available !== undefined && { available: msg.available }),
          ...(msg.backend !== undefined && { backend: msg.backend }),
        });
      case "token":
        return nodes.progress(session, { jobId: msg.job_id, attemptId: msg.attempt_id }, msg.text);
      case "progress":
        return nodes.progress(session, { jobId: msg.job_id, attemptId: msg.attempt_id });
      case "error":
        if (!msg.attempt_id || !msg.job_id) {
          log.warn({ node: session.name, code: msg.code, message: msg.message }, "node reported an error");
          return;
        }
        return nodes.failed(session, { jobId: msg.job_id, attemptId: msg.attempt_id }, msg);
      case "result":
        return nodes.result(session, { jobId: msg.job_id, attemptId: msg.attempt_id }, msg);
      case "hello":
        return;
    }
  }
}
