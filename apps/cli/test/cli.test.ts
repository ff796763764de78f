import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const bin = fileURLToPath(new URL("../bin/havn.js", import.meta.url));
const children: ChildProcess[] = [];

/** Starts `havn …` and resolves with the first URL it prints on stdout. */
function startHavn(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`havn ${args[0]} printed no URL: ${out}${err}`)), 30_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /(http:\/\/[0-9.:a-z]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]!.replace(/\/v1$/, "") });
      }
    });
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    child.once("exit", (code) => reject(new Error(`havn ${args[0]} exited ${code}: ${out}${err}`)));
  });
}

/** Runs `havn …` to the end. */
function runHavn(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "havn-cli-"));
  dirs.push(d);
  return d;
};

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("havn up, as a user runs it", () => {
  let url: string;
  let up: ChildProcess;
  beforeAll(async () => {
    ({ url, child: up } = await startHavn(["up", "--port", "0", "--data-dir", tempDir()]));
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
    const asked = await runHavn(["ask", "Hello there", "--coordinator", url, "--seed", "7", "--max-tokens", "20"]);
    expect(asked.code).toBe(0);
    const id = /\njob: (job-[0-9a-f]+)\n$/.exec(asked.stdout)?.[1];
    expect(id).toBeDefined();
    const verified = await runHavn(["receipt", id!, "--coordinator", url]);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/signature verified/);
    expect(verified.stdout).toMatch(/co-signature verified/);
    const json = await runHavn(["receipt", id!, "--coordinator", url, "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({
      job_id: id,
      verified: true,
      checks: { node: true, coordinator: true, chain: true, output: true },
    });
    // A coordinator key other than the one that co-signed: the check fails, and so does the exit code.
    const wrongKey = await runHavn(["receipt", id!, "--coordinator", url, "--coordinator-key", "A".repeat(43)]);
    expect(wrongKey.code).toBe(1);
  });

  it("havn receipt for an unknown job fails with a code", async () => {
    const r = await runHavn(["receipt", "job-000000000000000000000000", "--coordinator", url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/JOB_NOT_FOUND/);
  });

  it("stops cleanly on SIGTERM", async () => {
    const exited = new Promise<number | null>((resolve) => up.once("exit", resolve));
    up.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});

describe("a node on the openai backend, pointed at havn serve-model", () => {
  it("answers through coordinator → node → OpenAI-compatible server → built-in engine", async () => {
    const model = await startHavn(["serve-model", "--port", "0"]);
    const coordinator = await startHavn(["up", "--no-node", "--port", "0", "--data-dir", tempDir()]);
    const node = await startHavn([
      "node",
      "--coordinator",
      coordinator.url,
      "--backend",
      "openai",
      "--backend-url",
      `${model.url}/v1`,
      "--name",
      "openai-node",
      "--data-dir",
      tempDir(),
    ]);
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
    const job = (await (await fetch(`${coordinator.url}/jobs/${viaNode.id}`)).json()) as {
      receipt: { receipt: { backend: string } };
    };
    expect(job.receipt.receipt.backend).toBe("openai");
  });
});
