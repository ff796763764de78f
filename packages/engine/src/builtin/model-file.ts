import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { open, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { HavnError } from "@havn/protocol";
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

const unreadable = (path: string, problem: string, fix: string, cause?: unknown) =>
  new HavnError("BACKEND_MODEL_FILE_UNREADABLE", `The model file ${path} ${problem}: ${fix}.`, { cause });

/**
 * Checks that a model file an operator named can be served, before anything slow starts: it
 * exists, is a readable regular file, and starts with the GGUF magic. Each failure is one
 * sentence that says what to fix. Returns the file's size in bytes.
 */
export async function checkModelFile(path: string): Promise<number> {
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw unreadable(path, "is not a file", "pass the path of a .gguf file with --model-file");
    size = st.size;
  } catch (err) {
    if (err instanceof HavnError) throw err;
    const code = (err as { code?: string }).code;
    if (code === "ENOENT") throw unreadable(path, "does not exist", "check the path given to --model-file", err);
    throw unreadable(path, `cannot be read (${code ?? "error"})`, "check the path and its permissions", err);
  }
  const magic = Buffer.alloc(4);
  try {
    const handle = await open(path, "r");
    try {
      await handle.read(magic, 0, 4, 0);
    } finally {
      await handle.close();
    }
  } catch (err) {
    const code = (err as { code?: string }).code ?? "error";
    throw unreadable(path, `cannot be read (${code})`, "check its permissions", err);
  }
  if (magic.toString("latin1") !== "GGUF")
    throw unreadable(path, "is not a GGUF file", "download a GGUF build of the model (llama.cpp's format)");
  return size;
}

/** Called as a file is hashed, with the bytes read so far and the file's size. */
export type HashProgress = (bytesDone: number, bytesTotal: number) => void;

export interface HashModelFileOptions {
  /**
   * A directory of the node's own (its data dir) where the hash is cached, keyed by path, size
   * and modification time: multi-gigabyte files take seconds to hash. Nothing is ever written
   * beside the model itself. No cache when unset.
   */
  readonly cacheDir?: string | undefined;
  readonly onProgress?: HashProgress | undefined;
}

interface CacheEntry {
  readonly size: number;
  readonly mtimeMs: number;
  readonly sha256: string;
}

const cacheFileName = "model-hashes.json";

function readCache(dir: string): Record<string, CacheEntry> {
  try {
    const parsed = JSON.parse(readFileSync(join(dir, cacheFileName), "utf8")) as unknown;
    return parsed && typeof parsed === "object" ? (parsed as Record<string, CacheEntry>) : {};
  } catch {
    return {};
  }
}

/** SHA-256 of a model file, cached in `cacheDir` (see `HashModelFileOptions`). */
export async function hashModelFile(path: string, options: HashModelFileOptions = {}): Promise<string> {
  const full = resolve(path);
  const st = await stat(full);
  const cache = options.cacheDir === undefined ? {} : readCache(options.cacheDir);
  const hit = cache[full];
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs && /^[0-9a-f]{64}$/.test(hit.sha256)) {
    options.onProgress?.(st.size, st.size);
    return hit.sha256;
  }
  const hash = createHash("sha256");
  let done = 0;
  for await (const chunk of createReadStream(full, { highWaterMark: 4 * 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    done += (chunk as Buffer).length;
    options.onProgress?.(done, st.size);
  }
  const digest = hash.digest("hex");
  if (options.cacheDir !== undefined) {
    try {
      mkdirSync(options.cacheDir, { recursive: true });
      const file = join(options.cacheDir, cacheFileName);
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(
        tmp,
        `${JSON.stringify({ ...cache, [full]: { size: st.size, mtimeMs: st.mtimeMs, sha256: digest } }, null, 2)}\n`,
      );
      renameSync(tmp, file);
    } catch {
      // an unwritable data dir: hash again next time
    }
  }
  return digest;
}
