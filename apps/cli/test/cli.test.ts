import { spawn, type ChildProcess } from "node:child_process";
import Database from "better-sqlite3";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTinyModel } from "@havn/engine";
import { keyId, verifyKeyCertificate, type KeyCertificate } from "@havn/protocol";
import { loadOrCreateKeyFile } from "@havn/protocol/local";

// The real binary, as a user runs it: compiled (the test run builds first), in its own processes.
const bin = fileURLToPath(new URL("../bin/havn.js", import.meta.url));
const children: ChildProcess[] = [];
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "havn-cli-"));
  dirs.push(d);
  return d;
};

/** A user's machine: a home for havn's state and a working directory, both fresh. */
function machine() {
  return { home: tempDir(), cwd: tempDir() };
}
type Machine = ReturnType<typeof machine>;

function spawnHavn(args: string[], m: Machine) {
  const child = spawn(process.execPath, [bin, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    cwd: m.cwd,
    env: { ...process.env, HAVN_HOME: m.home, HAVN_COORDINATOR: "" },
  });
  children.push(child);
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out.stderr += d.toString()));
  return { child, out };
}

/** Starts `havn …` and resolves with the first URL it prints on stdout. */
function startHavn(args: string[], m: Machine) {
  const { child, out } = spawnHavn(args, m);
  return new Promise<{ child: ChildProcess; url: string; out: typeof out }>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`havn ${args[0]} printed no URL: ${out.stdout}${out.stderr}`)),
      30_000,
    );
    child.stdout!.on("data", () => {
      const match = /(http:\/\/[0-9.:a-z]+)/.exec(out.stdout);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1]!.replace(/\/v1$/, ""), out });
      }
    });
    child.once("exit", (code) => reject(new Error(`havn ${args[0]} exited ${code}: ${out.stdout}${out.stderr}`)));
  });
}

/** Runs `havn …` to the end. */
function runHavn(args: string[], m: Machine) {
  const { child, out } = spawnHavn(args, m);
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once("exit", (code) => resolve({ code, ...out })),
  );
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

const json = async <T>(url: string) => (await (await fetch(url)).json()) as T;
/** Parsed JSON log lines of a process's stderr (other lines, such as `error …`, are skipped). */
const logLines = (stderr: string) =>
  stderr
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const errorLines = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("error"));

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("the binary", () => {
  const m = machine();
  it("prints its version and its help", async () => {
    const version = await runHavn(["--version"], m);
    expect(version).toMatchObject({ code: 0, stdout: "0.1.0\n" });
    const help = await runHavn(["--help"], m);
    expect(help.code).toBe(0);
    for (const command of ["up", "coordinator", "node", "ask", "receipt", "serve-model"])
      expect(help.stdout).toContain(command);
    const nodeHelp = await runHavn(["node", "--help"], m);
    for (const flag of ["--log-level", "--log-format", "--data-dir", "--metrics-port"])
      expect(nodeHelp.stdout).toContain(flag);
  });

  it("bad flags: a one-line message, a hint and a failing exit code", async () => {
    const r = await runHavn(["up", "--port", "banana"], m);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(
      /error: option '--port <n>' argument 'banana' is invalid\. expected an integer from 0 to 65535/,
    );
    expect(r.stderr).toContain("(add --help for usage)");
    const unknown = await runHavn(["node", "--wat"], m);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/unknown option '--wat'/);
  });

  it("havn admin rotate-key keeps the old coordinator key aside and makes a new one", async () => {
    const dir = join(m.home, "rotating");
    const first = await runHavn(["admin", "rotate-key", "--data-dir", dir], m);
    expect(first.code).toBe(0);
    const key = /^new coordinator key (\S+) \(key id [0-9a-f]{16}\)\n/.exec(first.stdout)![1]!;
    const second = await runHavn(["admin", "rotate-key", "--data-dir", dir], m);
    expect(second.stdout).toMatch(
      new RegExp(`, certified by ${keyId(key)}; the old one is kept at .*coordinator\\.key\\.retired-`),
    );
    expect(second.stdout).not.toContain(key);
    expect(readdirSync(dir).sort()).toEqual([
      "coordinator.key",
      "coordinator.key.certificate.json",
      expect.stringMatching(/^coordinator\.key\.retired-/),
    ]);
    // The old key vouches for the new one: the certificate beside the new key verifies with it.
    const next = loadOrCreateKeyFile(join(dir, "coordinator.key"));
    const { certificate } = JSON.parse(readFileSync(join(dir, "coordinator.key.certificate.json"), "utf8")) as {
      certificate: KeyCertificate;
    };
    const view = (publicKey: string, c: KeyCertificate | null) => ({
      key_id: keyId(publicKey),
      public_key: publicKey,
      replica: "r",
      valid_from: 0,
      valid_until: null,
      certificate: c,
    });
    expect(verifyKeyCertificate(view(next.publicKey, certificate), view(key, null))).toBe(true);
    expect(verifyKeyCertificate(view(next.publicKey, certificate), view(next.publicKey, null))).toBe(false);
    // A second rotation before the coordinator registered this one would break the chain: refused.
    const third = await runHavn(["admin", "rotate-key", "--data-dir", dir], m);
    expect(third.code).not.toBe(0);
    expect(third.stderr).toContain("A key rotation is waiting for the coordinator to restart");
  });
});

describe("havn up, as a user runs it", () => {
  const m = machine();
  let url: string;
  let up: ChildProcess;
  let upOut: { stdout: string; stderr: string };
  beforeAll(async () => {
    ({ url, child: up, out: upOut } = await startHavn(["up", "--port", "0", "--log-level", "debug"], m));
  });

  it("keeps its state in its own directory under the havn home, the built-in node's key apart", () => {
    expect(readdirSync(join(m.home, "up")).sort()).toEqual(
      expect.arrayContaining(["builtin-node", "coordinator.key", "havn.db"]),
    );
    expect(readdirSync(join(m.home, "up", "builtin-node"))).toContain("node.key");
    // Nothing in the folder it was started in.
    expect(readdirSync(m.cwd)).toEqual([]);
  });

  it("serves the official openai client, streamed and not", async () => {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "anything", maxRetries: 0 });
    const r = await client.chat.completions.create({
      model: "havn-tiny",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 16,
      temperature: 0,
    });
    expect(r.choices[0]!.message.content).toMatch(/^The the/);
    const s = await client.chat.completions.create({
      model: "havn-tiny",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 16,
      temperature: 0,
      stream: true,
    });
    let text = "";
    for await (const c of s) text += c.choices[0]?.delta?.content ?? "";
    expect(text).toBe(r.choices[0]!.message.content);
  });

  it("havn ask streams an answer ending with its job id, and havn receipt verifies it", async () => {
    const asked = await runHavn(["ask", "Hello there", "--coordinator", url, "--seed", "7", "--max-tokens", "20"], m);
    expect(asked.code).toBe(0);
    const id = /\njob: (job-[0-9a-f]+)\n$/.exec(asked.stdout)?.[1];
    expect(id).toBeDefined();
    const verified = await runHavn(["receipt", id!, "--coordinator", url], m);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/signature verified/);
    expect(verified.stdout).toMatch(/co-signature verified/);
    expect(verified.stdout).toMatch(/chain link verified/);
    const json = await runHavn(["receipt", id!, "--coordinator", url, "--json"], m);
    expect(JSON.parse(json.stdout)).toMatchObject({
      job_id: id,
      verified: true,
      // Dev mode seals the log at each sweep (a second): this job's period may not be sealed yet.
      checks: { node: true, coordinator: true, chain: true, logged: true, output: true, inclusion: expect.anything() },
      problems: [],
    });
    // A coordinator key other than the one that co-signed: the check fails, and so does the exit code.
    const wrongKey = await runHavn(["receipt", id!, "--coordinator", url, "--coordinator-key", "A".repeat(43)], m);
    expect(wrongKey.code).toBe(1);
  });

  it("logs each job with one correlation id from the coordinator to the node and back, and never the prompt", async () => {
    const prompt = "please keep this sentence out of every log";
    const asked = await runHavn(["ask", prompt, "--coordinator", url, "--max-tokens", "8"], m);
    const id = /\njob: (job-[0-9a-f]+)\n$/.exec(asked.stdout)![1]!;
    await until(() =>
      logLines(upOut.stderr).some((l) => l.job === id && l.name === "node" && l.msg === "job completed"),
    );
    const lines = logLines(upOut.stderr).filter((l) => l.job === id);
    expect(lines.filter((l) => l.name === "coordinator").map((l) => l.msg)).toEqual(
      expect.arrayContaining(["job admitted", "job placed", "job started", "job completed"]),
    );
    expect(lines.filter((l) => l.name === "node").map((l) => l.msg)).toEqual(
      expect.arrayContaining(["job received", "job completed"]),
    );
    // One format everywhere: pino JSON lines with a level, a time and a message.
    for (const l of logLines(upOut.stderr))
      expect(l).toMatchObject({ level: expect.any(Number), time: expect.any(Number), msg: expect.any(String) });
    expect(upOut.stderr).not.toContain(prompt);
  });

  it("havn log verify checks the log, and fails with a reason for a tampered, reordered or out-of-range one", async () => {
    const asked = await runHavn(["ask", "log me", "--coordinator", url, "--max-tokens", "4"], m);
    const id = /\njob: (job-[0-9a-f]+)\n$/.exec(asked.stdout)![1]!;
    const saved = join(m.home, "log.json");
    const verified = await runHavn(["log", "verify", "--coordinator", url, "--save", saved], m);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(
      /^log #1–#(\d+): \1 entries, \d+ sealed periods? checked, signed head #\1, 1 key\nverified\n$/,
    );
    const bundle = JSON.parse(readFileSync(saved, "utf8")) as {
      to: number;
      entries: { receipt: { receipt: { latency_ms: number } } }[];
    };
    expect((await runHavn(["log", "verify", "--file", saved, "--json"], m)).code).toBe(0);

    const write = (name: string, value: unknown) => {
      const path = join(m.home, name);
      writeFileSync(path, JSON.stringify(value));
      return path;
    };
    const tampered = structuredClone(bundle);
    tampered.entries[0]!.receipt.receipt.latency_ms += 1;
    const t = await runHavn(["log", "verify", "--file", write("tampered.json", tampered)], m);
    expect(t.code).toBe(1);
    expect(t.stdout).toContain("FAILED: Entry #1: its hash does not match its receipt (the entry was altered).");
    const reordered = { ...bundle, entries: [...bundle.entries].reverse() };
    const r = await runHavn(["log", "verify", "--file", write("reordered.json", reordered)], m);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAILED: Entry #\d+ is where #1 belongs/);
    // A job after the range: once its period is sealed (dev mode: within a sweep), the check says
    // where its receipt is (settled runs are entries too, so it need not be the last one).
    let proof = await fetch(`${url}/v1/log/proof/${id}`);
    for (let i = 0; proof.status !== 200; i++) {
      if (i > 100) throw new Error("the job's period was never sealed");
      await new Promise((resolve) => setTimeout(resolve, 50));
      proof = await fetch(`${url}/v1/log/proof/${id}`);
    }
    const seq = ((await proof.json()) as { seq: number }).seq;
    const outside = await runHavn(["log", "verify", "--coordinator", url, "--to", String(seq - 1), "--job", id], m);
    expect(outside.code).toBe(1);
    expect(outside.stdout).toContain(`FAILED: ${id} is at #${seq}, outside the range #1–#${seq - 1}.`);
    expect((await runHavn(["log", "verify", "--coordinator", url, "--job", id], m)).code).toBe(0);
    const pinned = await runHavn(["log", "verify", "--coordinator", url, "--coordinator-key", "A".repeat(43)], m);
    expect(pinned.code).toBe(1);
    expect(pinned.stdout).toContain(`FAILED: The key set does not hold the pinned key ${"A".repeat(43)}.`);
    expect(pinned.stdout).toContain(
      "FAILED: Entry #1: co-signed by a key the key set does not vouch for at that time.",
    );
  });

  it("havn receipt exits non-zero when the stored output or the log's entry no longer matches the receipt", async () => {
    const asked = await runHavn(["ask", "tamper with me", "--coordinator", url, "--max-tokens", "4"], m);
    const id = /\njob: (job-[0-9a-f]+)\n$/.exec(asked.stdout)![1]!;
    expect((await runHavn(["receipt", id, "--coordinator", url], m)).code).toBe(0);
    const db = new Database(join(m.home, "up", "havn.db"));
    try {
      db.prepare(`UPDATE jobs SET output = json_set(output, '$.text', 'something else') WHERE id = ?`).run(id);
      const output = await runHavn(["receipt", id, "--coordinator", url], m);
      expect(output.code).toBe(1);
      expect(output.stdout).toContain("problem      The stored output does not hash to the receipt's outputs_cid.");
      db.prepare(`UPDATE execution_log SET prev_hash = ? WHERE job_id = ?`).run("f".repeat(64), id);
      const chain = await runHavn(["receipt", id, "--coordinator", url, "--json"], m);
      expect(chain.code).toBe(1);
      expect(JSON.parse(chain.stdout)).toMatchObject({ verified: false, checks: { logged: false, output: false } });
    } finally {
      db.close();
    }
  });

  it("havn publish, havn workflows, havn ask --workflow and havn earnings: a creator's workflow earns", async () => {
    const file = join(m.home, "workflow.json");
    writeFileSync(
      file,
      JSON.stringify({
        name: "shout",
        version: "1.0.0",
        description: "Says it louder.",
        model: "havn-tiny",
        template: "SAY IT LOUD: {{input}}",
        parameters: { max_tokens: 6, temperature: 0 },
      }),
    );
    const published = await runHavn(["publish", file, "--coordinator", url], m);
    expect(published.code).toBe(0);
    const id = /^published shout@1\.0\.0 as (wf-[0-9a-f]{24})\n$/.exec(published.stdout)?.[1];
    expect(id).toBeDefined();
    expect((await runHavn(["publish", file, "--coordinator", url], m)).stderr).toMatch(
      /^error WORKFLOW_VERSION_EXISTS: shout@1\.0\.0 is published already\./m,
    );
    const listed = await runHavn(["workflows", "--mine", "--coordinator", url], m);
    expect(listed.stdout).toContain(`${id}  shout@1.0.0`);
    expect(listed.stdout).toContain("split 45/20/25/5/5");
    const asked = await runHavn(["ask", "hello", "--workflow", "shout", "--coordinator", url], m);
    expect(asked.code).toBe(0);
    const job = /\njob: (job-[0-9a-f]+)\n$/.exec(asked.stdout)![1]!;
    const view = (await (await fetch(`${url}/v1/jobs/${job}`)).json()) as {
      workflow_id: string;
      params: { max_tokens: number };
    };
    expect(view).toMatchObject({ workflow_id: id, params: { max_tokens: 6 } });
    let earned = "";
    for (let i = 0; i < 100 && !/across 1 run /.test(earned); i++) {
      earned = (await runHavn(["earnings", "shout", "--coordinator", url], m)).stdout;
      if (!/across 1 run /.test(earned)) await new Promise((r) => setTimeout(r, 100));
    }
    // The dev account created it and ran it: 45 % + the upstream 20 % (it has no dependencies) of the charge.
    expect(earned).toMatch(
      new RegExp(
        `^${id} earned 0\\.\\d+ HAI across 1 run \\(0\\.\\d+ from its own runs, 0 from workflows built on it\\)\\n$`,
      ),
    );
  });

  it("havn receipt for an unknown job fails with a code", async () => {
    const r = await runHavn(["receipt", "job-000000000000000000000000", "--coordinator", url], m);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error JOB_NOT_FOUND: No job with this id\./m);
  });

  it("a second havn up on the same port: one line with the fix, exit 1", async () => {
    const port = new URL(url).port;
    const r = await runHavn(["coordinator", "--port", port, "--data-dir", tempDir()], m);
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toEqual([
      `error CONFIG_PORT_IN_USE: 127.0.0.1:${port} is already in use: stop the process that holds it, or choose another port with --port.`,
    ]);
  });

  it("havn node in the same folder: both nodes stay connected, each with its own key", async () => {
    const node = await startHavn(["node", "--coordinator", url, "--backend", "builtin"], m);
    expect(node.out.stdout).toMatch(/^node \S+ connected to http/);
    await until(async () => (await json<{ nodes_online: number }>(`${url}/health`)).nodes_online === 2);
    // A while later, nobody has knocked anybody off.
    await new Promise((r) => setTimeout(r, 2_500));
    const nodes = await json<{ data: { name: string; state: string }[] }>(`${url}/v1/nodes`);
    expect(nodes.data.filter((n) => n.state === "available")).toHaveLength(2);
    expect(upOut.stderr + node.out.stderr).not.toMatch(/replaced|NODE_KEY_IN_USE|disconnected/);
    expect(readdirSync(join(m.home, "node"))).toContain("node.key");
    node.child.kill("SIGTERM");
  });

  it("stops cleanly on SIGTERM", async () => {
    const exited = new Promise<number | null>((resolve) => up.once("exit", resolve));
    up.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});

describe("failing fast and clearly", () => {
  const m = machine();

  it("a missing --model-file (it used to be a raw ENOENT)", async () => {
    const r = await runHavn(["node", "--model-file", join(m.cwd, "nope.gguf")], m);
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toEqual([
      `error BACKEND_MODEL_FILE_UNREADABLE: The model file ${join(m.cwd, "nope.gguf")} does not exist: check the path given to --model-file.`,
    ]);
  });

  it("a --backend-url without /v1 (it used to say BACKEND_MODEL_NOT_LOADED), and one nobody listens at", async () => {
    const model = await startHavn(["serve-model", "--port", "0"], m);
    const r = await runHavn(["node", "--backend", "openai", "--backend-url", model.url], m);
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toEqual([
      `error BACKEND_URL_INVALID: ${model.url} is not the API's base URL: use --backend-url ${model.url}/v1.`,
    ]);
    const dead = await runHavn(["node", "--backend", "openai", "--backend-url", "http://127.0.0.1:9/v1"], m);
    expect(dead.code).toBe(1);
    expect(errorLines(dead.stderr)[0]).toMatch(
      /^error BACKEND_UNAVAILABLE: Nothing answers at http:\/\/127\.0\.0\.1:9\/v1 \(ECONNREFUSED\)/,
    );
    model.child.kill("SIGTERM");
  });

  it("a coordinator nobody answers at: the node says which URL and keeps retrying with backoff", async () => {
    const port = await freePort();
    const { child, out } = spawnHavn(["node", "--coordinator", `http://127.0.0.1:${port}`], m);
    const cannot = () => logLines(out.stderr).filter((l) => String(l.msg).startsWith("cannot reach the coordinator"));
    await until(() => cannot().length >= 3);
    expect(cannot()[0]!.msg).toMatch(
      new RegExp(
        `^cannot reach the coordinator at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\); retrying in \\d+\\.\\d s$`,
      ),
    );
    const delays = cannot().map((l) => l.retry_in_ms as number);
    expect(delays[2]!).toBeGreaterThan(delays[0]!);
    expect(child.exitCode).toBeNull();
    child.kill("SIGTERM");
  });

  it("--log-format pretty writes lines for people instead of JSON", async () => {
    const port = await freePort();
    const { child, out } = spawnHavn(
      ["node", "--coordinator", `http://127.0.0.1:${port}`, "--log-format", "pretty"],
      m,
    );
    await until(() => out.stderr.includes("cannot reach the coordinator"));
    expect(out.stderr).toMatch(/WARN.*cannot reach the coordinator at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    expect(logLines(out.stderr)).toEqual([]);
    child.kill("SIGTERM");
  });

  it("a ./data left by an earlier version is found, and the user told what to do with it", async () => {
    const old = machine();
    mkdirSync(join(old.cwd, "data"));
    writeFileSync(join(old.cwd, "data", "havn.db"), "");
    const port = await freePort();
    const { child, out } = spawnHavn(["coordinator", "--port", String(port)], old);
    await until(() => out.stdout.includes("listening"));
    const notice = logLines(out.stderr).find((l) => String(l.msg).startsWith("found ./data"));
    expect(notice?.msg).toContain("pass --data-dir ./data");
    child.kill("SIGTERM");
  });
});

describe("waiting, said out loud", () => {
  const m = machine();

  it("havn ask says it is queued for a node, then answers when one connects", async () => {
    const coordinator = await startHavn(["up", "--no-node", "--port", "0"], m);
    const { child, out } = spawnHavn(
      ["ask", "anyone there?", "--coordinator", coordinator.url, "--model", "havn-tiny"],
      m,
    );
    await until(() => out.stderr.includes("queued"));
    expect(out.stderr).toBe("queued — waiting for a node for model havn-tiny\n");
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    const node = await startHavn(["node", "--coordinator", coordinator.url], m);
    expect(await exited).toBe(0);
    expect(out.stdout).toMatch(/\njob: job-[0-9a-f]+\n$/);
    node.child.kill("SIGTERM");
    coordinator.child.kill("SIGTERM");
  });

  it("a model file is hashed and loaded with a log line per stage (no terminal), served with a line per request", async () => {
    const file = join(m.cwd, "my-model.gguf");
    writeFileSync(file, buildTinyModel());
    const served = await startHavn(["serve-model", "--port", "0", "--model-file", file], m);
    const stages = logLines(served.out.stderr).map((l) => l.msg);
    expect(stages).toEqual(
      expect.arrayContaining(["hashing my-model.gguf", "hashing done", "loading my-model.gguf", "loading done"]),
    );
    expect(readdirSync(m.cwd)).toEqual(["my-model.gguf"]);
    const r = await fetch(`${served.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "req-77" },
      body: JSON.stringify({ model: "my-model", messages: [{ role: "user", content: "hi" }], max_tokens: 4 }),
    });
    expect(r.headers.get("x-request-id")).toBe("req-77");
    // The model may stop before max_tokens: the line counts what was generated.
    const body = (await r.json()) as { usage: { completion_tokens: number } };
    await until(() => logLines(served.out.stderr).some((l) => l.msg === "request"));
    expect(logLines(served.out.stderr).find((l) => l.msg === "request")).toMatchObject({
      name: "serve-model",
      request_id: "req-77",
      method: "POST",
      path: "/v1/chat/completions",
      status: 200,
      model: "my-model",
      tokens: body.usage.completion_tokens,
    });
    served.child.kill("SIGTERM");
  });
});

describe("a node on the openai backend, pointed at havn serve-model", () => {
  it("answers through coordinator → node → OpenAI-compatible server → built-in engine, and serves its own metrics", async () => {
    const m = machine();
    const model = await startHavn(["serve-model", "--port", "0"], m);
    const coordinator = await startHavn(["up", "--no-node", "--port", "0"], m);
    const node = await startHavn(
      [
        "node",
        "--coordinator",
        coordinator.url,
        "--backend",
        "openai",
        "--backend-url",
        `${model.url}/v1`,
        "--name",
        "openai-node",
        "--metrics-port",
        "0",
      ],
      m,
    );
    expect(node.url).toBe(coordinator.url);
    const client = new OpenAI({ baseURL: `${coordinator.url}/v1`, apiKey: "x", maxRetries: 0 });
    const viaNode = await client.chat.completions.create({
      model: "havn-tiny",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 12,
      seed: 9,
      temperature: 0.8,
    });
    const direct = await new OpenAI({ baseURL: `${model.url}/v1`, apiKey: "x", maxRetries: 0 }).chat.completions.create(
      {
        model: "havn-tiny",
        messages: [{ role: "user", content: "hi" }],
        max_tokens: 12,
        seed: 9,
        temperature: 0.8,
      },
    );
    expect(viaNode.choices[0]!.message.content).toBe(direct.choices[0]!.message.content);
    const job = await json<{ receipt: { receipt: { backend: string } } }>(`${coordinator.url}/v1/jobs/${viaNode.id}`);
    expect(job.receipt.receipt.backend).toBe("openai");

    const metricsUrl = logLines(node.out.stderr).find((l) => l.msg === "serving node metrics")!.url as string;
    const metrics = await (await fetch(metricsUrl)).text();
    expect(metrics).toMatch(/^havn_node_jobs_total\{model="havn-tiny",outcome="completed"\} 1$/m);
    expect(metrics).toMatch(/^havn_node_backend_up 1$/m);
    expect(metrics).toMatch(/^havn_node_connected 1$/m);
    for (const c of [node, coordinator, model]) c.child.kill("SIGTERM");
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
