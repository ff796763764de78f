import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildTinyModel, defaultTinyModelSpec, type TinyModelSpec } from "./tiny-model.js";

/**
 * Writes the built-in model into `dir` (once; the name carries its hash) and returns its path
 * and SHA-256. Written to a temporary name and renamed, so a crash never leaves half a file.
 */
export function ensureTinyModelFile(
  dir: string,
  spec: TinyModelSpec = defaultTinyModelSpec,
): { path: string; sha256: string } {
  const bytes = buildTinyModel(spec);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const path = join(dir, `${spec.name}-${sha256.slice(0, 12)}.gguf`);
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  }
  return { path, sha256 };
}

/**
 * SHA-256 of a model file. Multi-gigabyte files take seconds to hash, so the result is cached
 * beside the file, keyed by size and modification time.
 */
export async function hashModelFile(path: string): Promise<string> {
  const st = statSync(path);
  const sidecar = `${path}.sha256`;
  const key = `${st.size}:${st.mtimeMs}`;
  try {
    const [cachedKey, cached] = readFileSync(sidecar, "utf8").trim().split(" ");
    if (cachedKey === key && cached && /^[0-9a-f]{64}$/.test(cached)) return cached;
  } catch {
    // no cache yet
  }
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  const digest = hash.digest("hex");
  try {
    writeFileSync(sidecar, `${key} ${digest}\n`);
  } catch {
    // read-only model directory: hash again next time
  }
  return digest;
}
