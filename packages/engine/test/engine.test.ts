import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { HavnError } from "@havn/protocol";
import { buildTinyModel, BuiltinBackend, createOpenAIServer, OpenAIBackend, StopMatcher } from "../src/index.ts";

const chat = (content: string) => ({ kind: "chat" as const, messages: [{ role: "user" as const, content }] });
const params = (over: Partial<{ max_tokens: number; temperature: number; seed: number; stop: string[] }> = {}) => ({
  max_tokens: 48,
  temperature: 0.8,
  top_p: 1,
  seed: 1,
  stop: [],
  ...over,
});

describe("the built-in tiny model", () => {
  it("is byte-identical on every generation (hash pinned: a change here is a new model)", () => {
    const a = buildTinyModel();
    const b = buildTinyModel();
    expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).toBe(0);
    expect(a.length).toBeGreaterThan(1_500_000);
    expect(a.length).toBeLessThan(2_000_000);
    expect(createHash("sha256").update(a).digest("hex")).toBe(
      "b191b08618824ac6c0569e6ad433a844b1a1bba11c38a06217f5fb7a59b25c6f",
    );
  });
});

describe("a model file an operator names (--model-file)", () => {
  it("is served under its own name with its file's SHA-256, cached in the node's data dir, never beside the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "havn-model-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const models = join(dir, "downloads");
    const dataDir = join(dir, "node-data");
    mkdirSync(models);
    const file = join(models, "my-model.gguf");
    writeFileSync(file, buildTinyModel());
    const stages = new Set<string>();
    const backend = new BuiltinBackend({
      modelFile: file,
      threads: 1,
      cacheDir: dataDir,
      onProgress: (stage, fraction) => {
        expect(fraction).toBeGreaterThanOrEqual(0);
        expect(fraction).toBeLessThanOrEqual(1);
        stages.add(stage);
      },
    });
    try {
      const info = await backend.info();
      expect(info.models[0]).toMatchObject({
        name: "my-model",
        modelHash: createHash("sha256").update(readFileSync(file)).digest("hex"),
      });
      // Nothing is written beside the operator's model; the hash is cached in the node's own dir.
      expect(readdirSync(models)).toEqual(["my-model.gguf"]);
      expect(readFileSync(join(dataDir, "model-hashes.json"), "utf8")).toContain(info.models[0]!.modelHash);
      expect([...stages].sort()).toEqual(["hash", "load"]);
      expect(await backend.health()).toEqual({ ok: true });
      const r = await backend.generate({
        model: "my-model",
        input: chat("hi"),
        params: params({ temperature: 0, max_tokens: 8 }),
      });
      expect(r.text).toMatch(/^The the/);
    } finally {
      await backend.close();
    }
  });
});

describe("StopMatcher", () => {
  it("never emits a stop sequence, even split across pieces", () => {
    const m = new StopMatcher(["END"]);
    let out = "";
    for (const piece of ["ab", "cE", "N", "Dxyz"]) {
      const r = m.push(piece);
      out += r.emit;
      if (r.stopped) break;
    }
    expect(out).toBe("abc");
  });
});

describe("builtin backend (node-llama-cpp)", () => {
  const backend = new BuiltinBackend();
  afterAll(() => backend.close());

  it("advertises the tiny model with its hash and pinned runtime", async () => {
    const info = await backend.info();
    expect(info.models[0]).toMatchObject({ name: "havn-tiny", tasks: ["chat", "completion"] });
    expect(info.models[0]?.modelHash).toBe("b191b08618824ac6c0569e6ad433a844b1a1bba11c38a06217f5fb7a59b25c6f");
    expect(info.runtime).toMatchObject({ engine: "llama.cpp", threads: 1, batch_size: 512, device: "cpu" });
  });

  it("streams pieces that add up to the result, and stops at max_tokens", async () => {
    const pieces: string[] = [];
    const r = await backend.generate({
      model: "havn-tiny",
      input: chat("hi"),
      params: params({ temperature: 0 }),
      onText: (t) => pieces.push(t),
    });
    expect(pieces.join("")).toBe(r.text);
    // Greedy decoding of this model never reaches end-of-text: it runs to max_tokens.
    expect(r).toMatchObject({ finishReason: "length", completionTokens: 48 });
    // Each token streams as it is made (no stop string is pending in plain text).
    expect(pieces.length).toBeGreaterThan(40);
  });

  it("gives the same text for the same seed, a different text for another seed", async () => {
    const a = await backend.generate({ model: "havn-tiny", input: chat("hi"), params: params({ seed: 5 }) });
    const other = new BuiltinBackend();
    const b = await other.generate({ model: "havn-tiny", input: chat("hi"), params: params({ seed: 5 }) });
    await other.close();
    const c = await backend.generate({ model: "havn-tiny", input: chat("hi"), params: params({ seed: 6 }) });
    expect(b.text).toBe(a.text);
    expect(c.text).not.toBe(a.text);
  });

  it("gives the same text in another process", async () => {
    const mine = await backend.generate({ model: "havn-tiny", input: chat("cross"), params: params({ seed: 9 }) });
    const script = fileURLToPath(new URL("./fixtures/generate-once.ts", import.meta.url));
    const theirs = JSON.parse(
      execFileSync(process.execPath, ["--conditions=havn-source", "--import", "tsx", script, "cross", "9"], {
        encoding: "utf8",
        timeout: 60_000,
      }),
    );
    expect(theirs).toBe(mine.text);
  });

  it("honours stop sequences and cancellation", async () => {
    const greedy = await backend.generate({ model: "havn-tiny", input: chat("x"), params: params({ temperature: 0 }) });
    expect(greedy.text).toMatch(/^The the the/);
    const stopped = await backend.generate({
      model: "havn-tiny",
      input: chat("x"),
      params: params({ temperature: 0, stop: ["the t"] }),
    });
    expect(stopped).toMatchObject({ text: "The ", finishReason: "stop" });
    const abort = new AbortController();
    const cancelled = await backend.generate({
      model: "havn-tiny",
      input: chat("x"),
      params: params({ max_tokens: 2000 }),
      signal: abort.signal,
      onText: () => abort.abort(),
    });
    expect(cancelled.finishReason).toBe("cancelled");
    expect(cancelled.completionTokens).toBeLessThan(3);
  });

  it("scores a continuation: its own greedy output is more likely than noise", async () => {
    const input = chat("score me");
    const greedy = await backend.generate({
      model: "havn-tiny",
      input,
      params: params({ temperature: 0, max_tokens: 20 }),
    });
    const own = await backend.score({ model: "havn-tiny", input, continuation: greedy.text });
    const noise = await backend.score({ model: "havn-tiny", input, continuation: "qzx vkj wqp zzq jjx" });
    const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(own.logprobs.length).toBeGreaterThan(5);
    expect(own.logprobs.every((l) => l <= 0)).toBe(true);
    expect(mean(own.logprobs)).toBeGreaterThan(mean(noise.logprobs) + 2);
  });

  it("rejects a model it does not serve", async () => {
    await expect(backend.generate({ model: "llama-70b", input: chat("x"), params: params() })).rejects.toMatchObject({
      code: "BACKEND_MODEL_NOT_LOADED",
    });
  });
});

describe("openai backend against serve-model (the real engine over HTTP)", () => {
  const engine = new BuiltinBackend();
  const server = createOpenAIServer(engine);
  let openai: OpenAIBackend;
  beforeAll(async () => {
    const url = await server.listen({ port: 0, host: "127.0.0.1" });
    openai = new OpenAIBackend({ baseUrl: `${url}/v1` });
  });
  afterAll(async () => {
    await server.close();
    await engine.close();
  });

  it("lists the served model", async () => {
    const info = await openai.info();
    expect(info.models.map((m) => m.name)).toEqual(["havn-tiny"]);
    expect(info.backend).toBe("openai");
  });

  it("streams the same text the engine gives directly, chat and completion", async () => {
    for (const input of [chat("over http"), { kind: "completion" as const, prompt: "The node" }]) {
      const direct = await engine.generate({ model: "havn-tiny", input, params: params({ seed: 3 }) });
      const pieces: string[] = [];
      const viaHttp = await openai.generate({
        model: "havn-tiny",
        input,
        params: params({ seed: 3 }),
        onText: (t) => pieces.push(t),
      });
      expect(viaHttp.text).toBe(direct.text);
      expect(pieces.length).toBeGreaterThan(1);
      expect(viaHttp).toMatchObject({ finishReason: direct.finishReason, completionTokens: direct.completionTokens });
      expect(viaHttp.promptTokens).toBe(direct.promptTokens);
    }
  });

  it("asks for the whole answer at once when nobody listens for tokens", async () => {
    const direct = await engine.generate({ model: "havn-tiny", input: chat("whole"), params: params({ seed: 4 }) });
    const whole = await openai.generate({ model: "havn-tiny", input: chat("whole"), params: params({ seed: 4 }) });
    // The same answer; token ids stay on the server's side of HTTP.
    const { tokenIds, ...answer } = direct;
    expect(whole).toEqual(answer);
    expect(tokenIds).toHaveLength(direct.completionTokens);
  });

  it("scores completion input through echo + logprobs", async () => {
    const r = await openai.score({
      model: "havn-tiny",
      input: { kind: "completion", prompt: "The " },
      continuation: "network",
    });
    expect(r.logprobs.length).toBeGreaterThan(3);
  });

  it("maps server errors to catalog codes", async () => {
    await expect(openai.generate({ model: "nope", input: chat("x"), params: params() })).rejects.toMatchObject({
      code: "BACKEND_MODEL_NOT_LOADED",
    });
    const dead = new OpenAIBackend({ baseUrl: "http://127.0.0.1:9/v1" });
    await expect(dead.info()).rejects.toBeInstanceOf(HavnError);
    await expect(dead.info()).rejects.toMatchObject({ code: "BACKEND_UNAVAILABLE" });
  });
});

describe("a wrong backend fails fast, with one sentence that names the fix", () => {
  const engine = new BuiltinBackend();
  const server = createOpenAIServer(engine);
  let url: string;
  let other: Server;
  let otherUrl: string;
  beforeAll(async () => {
    url = await server.listen({ port: 0, host: "127.0.0.1" });
    // A web server that is not an OpenAI-compatible API.
    other = createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<html>hi</html>"));
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
    otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await server.close();
    await engine.close();
    await new Promise((resolve) => other.close(resolve));
  });

  const failure = async (backend: OpenAIBackend) => {
    try {
      await backend.info();
    } catch (err) {
      return err as HavnError;
    }
    throw new Error("info() succeeded");
  };

  it("a base URL without /v1 says to add it (it used to say BACKEND_MODEL_NOT_LOADED)", async () => {
    const err = await failure(new OpenAIBackend({ baseUrl: url }));
    expect(err.code).toBe("BACKEND_URL_INVALID");
    expect(err.message).toContain(`--backend-url ${url}/v1`);
  });

  it("nothing listening says so, with the system's reason", async () => {
    const err = await failure(new OpenAIBackend({ baseUrl: "http://127.0.0.1:9/v1" }));
    expect(err.code).toBe("BACKEND_UNAVAILABLE");
    expect(err.message).toMatch(/Nothing answers at http:\/\/127\.0\.0\.1:9\/v1 \(ECONNREFUSED\)/);
  });

  it("a server that is not OpenAI-compatible is told apart", async () => {
    const err = await failure(new OpenAIBackend({ baseUrl: `${otherUrl}/v1` }));
    expect(err.code).toBe("BACKEND_NOT_OPENAI_COMPATIBLE");
    expect(err.message).toContain("did not answer an OpenAI model list");
  });

  it("a model the server does not list names the ones it does", async () => {
    const err = await failure(new OpenAIBackend({ baseUrl: `${url}/v1`, models: ["llama3.2:3b"] }));
    expect(err.code).toBe("BACKEND_MODEL_NOT_LOADED");
    expect(err.message).toContain("does not list llama3.2:3b");
    expect(err.message).toContain("havn-tiny");
  });

  it("never repeats credentials or a query from the URL in what it says", async () => {
    const err = await failure(new OpenAIBackend({ baseUrl: "http://user:s3cret@127.0.0.1:9/v1?api-key=s3cret" }));
    expect(err.message).toContain("Nothing answers at http://127.0.0.1:9/v1 (");
    expect(err.message).not.toContain("s3cret");
  });

  it("a URL that is not http(s) is refused at once", () => {
    expect(() => new OpenAIBackend({ baseUrl: "localhost:11434" })).toThrow(
      expect.objectContaining({ code: "BACKEND_URL_INVALID" }),
    );
  });

  it("health follows the server: failing while it is down, ok when it is back", async () => {
    const engine2 = new BuiltinBackend();
    const server2 = createOpenAIServer(engine2);
    const at = await server2.listen({ port: 0, host: "127.0.0.1" });
    const port = Number(new URL(at).port);
    const backend = new OpenAIBackend({ baseUrl: `${at}/v1`, healthTimeoutMs: 1_000 });
    try {
      await backend.info();
      expect(await backend.health()).toEqual({ ok: true });
      await server2.close();
      expect(await backend.health()).toMatchObject({ ok: false, code: "BACKEND_UNAVAILABLE" });
      const server3 = createOpenAIServer(engine2);
      await server3.listen({ port, host: "127.0.0.1" });
      expect(await backend.health()).toEqual({ ok: true });
      await server3.close();
    } finally {
      await backend.close();
      await engine2.close();
    }
  });
});

describe("a model file that cannot be served fails before anything slow starts", () => {
  const dir = mkdtempSync(join(tmpdir(), "havn-badmodel-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const load = async (modelFile: string) => {
    const backend = new BuiltinBackend({ modelFile });
    try {
      await backend.info();
      throw new Error("loaded");
    } catch (err) {
      return err as HavnError;
    } finally {
      await backend.close();
    }
  };

  it("a missing file (it used to surface as a raw ENOENT)", async () => {
    const err = await load(join(dir, "missing.gguf"));
    expect(err.code).toBe("BACKEND_MODEL_FILE_UNREADABLE");
    expect(err.message).toMatch(/missing\.gguf does not exist: check the path given to --model-file/);
    expect(await new BuiltinBackend({ modelFile: join(dir, "missing.gguf") }).health()).toMatchObject({
      ok: false,
      code: "BACKEND_MODEL_FILE_UNREADABLE",
    });
  });

  it("a directory, and a file that is not GGUF", async () => {
    expect((await load(dir)).message).toContain("is not a file");
    const text = join(dir, "notes.gguf");
    writeFileSync(text, "these are not weights");
    const err = await load(text);
    expect(err.code).toBe("BACKEND_MODEL_FILE_UNREADABLE");
    expect(err.message).toContain("is not a GGUF file");
  });

  it.skipIf(process.getuid?.() === 0)(
    "a file the node may not read (skipped as root, who reads anything)",
    async () => {
      const locked = join(dir, "locked.gguf");
      writeFileSync(locked, buildTinyModel());
      chmodSync(locked, 0o000);
      expect((await load(locked)).message).toContain("cannot be read (EACCES)");
    },
  );
});
