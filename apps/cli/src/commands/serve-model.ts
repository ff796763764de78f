import { BuiltinBackend, createOpenAIServer } from "@havn/engine";
import { onShutdown } from "../options.js";

/** `havn serve-model`: the built-in engine as an OpenAI-compatible HTTP server. */
export async function serveModel(o: {
  port: number;
  host: string;
  modelFile?: string;
  model?: string;
  slots?: number;
}): Promise<void> {
  const backend = new BuiltinBackend({ modelFile: o.modelFile, modelName: o.model, slots: o.slots });
  const info = await backend.info();
  const server = createOpenAIServer(backend);
  const url = await server.listen({ port: o.port, host: o.host });
  process.stdout.write(`serving ${info.models.map((m) => m.name).join(", ")} at ${url}/v1\n`);
  onShutdown(async () => {
    await server.close();
    await backend.close();
  });
}
