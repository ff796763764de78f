import { join } from "node:path";
import { BuiltinBackend, OpenAIBackend, type Backend } from "@havn/engine";
import { NodeAgent } from "@havn/node-agent";

export interface NodeCommandOptions {
  readonly coordinator: string;
  readonly backend: "builtin" | "openai";
  readonly backendUrl?: string | undefined;
  readonly apiKey?: string | undefined;
  readonly model?: string | undefined;
  readonly modelFile?: string | undefined;
  readonly name?: string | undefined;
  readonly dataDir: string;
  readonly slots?: number | undefined;
  readonly threads?: number | undefined;
}

export function makeBackend(o: NodeCommandOptions): Backend {
  if (o.backend === "openai") {
    if (!o.backendUrl)
      throw new Error("--backend openai needs --backend-url (e.g. http://127.0.0.1:11434/v1 for Ollama)");
    return new OpenAIBackend({
      baseUrl: o.backendUrl,
      apiKey: o.apiKey,
      models: o.model ? [o.model] : undefined,
      slots: o.slots,
    });
  }
  return new BuiltinBackend({
    modelFile: o.modelFile,
    modelName: o.model,
    modelDir: join(o.dataDir, "models"),
    slots: o.slots,
    threads: o.threads,
  });
}

/** Starts a node agent; resolves once the coordinator has welcomed it. */
export async function startNode(o: NodeCommandOptions, log = true): Promise<{ agent: NodeAgent; backend: Backend }> {
  const backend = makeBackend(o);
  const agent = new NodeAgent({
    coordinatorUrl: o.coordinator,
    backend,
    keyPath: join(o.dataDir, "node.key"),
    name: o.name,
    log: log
      ? (level, message, fields) =>
          process.stderr.write(`[node] ${level}: ${message}${fields ? ` ${JSON.stringify(fields)}` : ""}\n`)
      : undefined,
  });
  await agent.start();
  return { agent, backend };
}
