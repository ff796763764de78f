import { basename } from "node:path";
import { BuiltinBackend, createOpenAIServer } from "@havn/engine";
import { listenError } from "@havn/protocol/local";
import { resolveDataDir } from "../data-dir.js";
import { createLogger } from "../logging.js";
import { onShutdown, type LogOptions } from "../options.js";
import { Progress } from "../progress.js";

/** `havn serve-model`: the built-in engine as an OpenAI-compatible HTTP server. */
export async function serveModel(
  o: LogOptions & {
    port: number;
    host: string;
    modelFile?: string;
    model?: string;
    slots?: number;
    dataDir?: string;
  },
): Promise<void> {
  const log = await createLogger(o);
  const dataDir = resolveDataDir("serve-model", o.dataDir, log);
  const progress = o.modelFile ? new Progress(log, basename(o.modelFile)) : undefined;
  const backend = new BuiltinBackend({
    modelFile: o.modelFile,
    modelName: o.model,
    slots: o.slots,
    modelDir: `${dataDir}/models`,
    cacheDir: dataDir,
    onProgress: progress && ((stage, fraction) => progress.update(stage === "hash" ? "hashing" : "loading", fraction)),
  });
  const info = await backend.info();
  progress?.end();
  const server = createOpenAIServer(backend, { logger: log });
  let url: string;
  try {
    url = await server.listen({ port: o.port, host: o.host });
  } catch (err) {
    await backend.close();
    throw listenError(err, o.host, o.port);
  }
  process.stdout.write(`serving ${info.models.map((m) => m.name).join(", ")} at ${url}/v1\n`);
  onShutdown(async () => {
    await server.close();
    await backend.close();
  });
}
