import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { buildTinyModel } from "@havn/engine";
import { watch } from "./watched.js";

// Every command the README shows is run here (or by .ci/run: `npm ci`, `npm test`), the way a
// user types it — through npm and npx — so the README cannot quietly go stale.
const root = fileURLToPath(new URL("../../../", import.meta.url));
const readme = readFileSync(join(root, "README.md"), "utf8");
const home = mkdtempSync(join(tmpdir(), "havn-readme-"));
const children: ChildProcess[] = [];
afterAll(() => {
  // npm and npx start the real process in a shell of their own: stop each command's whole group.
  for (const c of children) stop(c, "SIGKILL");
  rmSync(home, { recursive: true, force: true });
});

/** The commands in the README's `sh` blocks, comments and continuation lines joined. */
function readmeCommands(): string[] {
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const commands: string[] = [];
  for (const block of blocks) {
    let current = "";
    for (const raw of block.split("\n")) {
      const line = raw.trim().startsWith("#") ? "" : raw.replace(/\s+#.*$/, "").trim();
      if (!line) continue;
      current += `${current ? " " : ""}${line.replace(/\\$/, "").trim()}`;
      if (!line.endsWith("\\")) {
        commands.push(current);
        current = "";
      }
    }
  }
  return commands;
}

/** How each README command is exercised: by this file, or by .ci/run. */
const exercised: [prefix: string, where: string][] = [
  ["npm ci && npm start", "`npm ci` by .ci/run; `npm start` here"],
  ["npm test", ".ci/run"],
  ['npx havn ask "Hello, network"', "here"],
  ["npx havn receipt", "here"],
  ["npx havn log verify", "here"],
  ["npx havn node --coordinator http://coordinator:8787 --backend openai", "here"],
  ["npx havn node --coordinator http://coordinator:8787 --model-file", "here"],
  ["npx havn serve-model --port 8080", "here"],
  ["npx havn admin create --email ops@example.com", "here"],
  ["HAVN_JOIN_TOKEN_FILE=/etc/havn/join-token npx havn coordinator --host 0.0.0.0", "here"],
  ["npx havn login --coordinator http://coordinator:8787 --email me@example.com --register", "here"],
  ["npx havn keys create --name laptop --scopes jobs --coordinator http://coordinator:8787", "here"],
  ["npx havn whoami --coordinator http://coordinator:8787", "here"],
  ["npx havn admin credit --email me@example.com --amount 10", "here"],
  ["npx havn balance --history --coordinator http://coordinator:8787", "here"],
  ["npx havn node --coordinator http://coordinator:8787 --name my-4090", "here"],
  ["HAVN_JOIN_TOKEN_FILE=/etc/havn/join-token npx havn node --coordinator http://coordinator:8787", "here"],
  ["npx havn stake 2000 --node my-4090 --coordinator http://coordinator:8787", "here"],
  ["npx havn unstake 500 --node my-4090 --coordinator http://coordinator:8787", "here"],
  ["npx havn params --coordinator http://coordinator:8787", "here"],
  ["npx havn propose set stake.floor_S=1500000000", "here"],
  ["npx havn vote prop-", "here"],
  ["npx havn pool --coordinator http://coordinator:8787", "here"],
  ["npm run build", "here"],
  ["npm run bench", "here (`-- smoke`)"],
  ["npm run docs", "here"],
];

const run = (command: string, args: string[], env: Record<string, string> = {}, input?: string) =>
  watch(children, command, args, {
    cwd: root,
    detached: true,
    env: { ...process.env, HAVN_HOME: home, HAVN_COORDINATOR: "", HAVN_API_KEY: "", HAVN_JOIN_TOKEN: "", ...env },
    input,
  });
function stop(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM") {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // the group has exited already
  }
}

describe("the README's commands", () => {
  it("are each exercised by a test or by .ci/run", () => {
    const commands = readmeCommands();
    expect(commands.length).toBeGreaterThan(8);
    for (const command of commands) {
      const covered = exercised.some(([prefix]) => command.startsWith(prefix));
      expect([command, covered]).toEqual([command, true]);
    }
  });

  it("npm start, then npx havn ask, npx havn receipt and npx havn log verify, then the three ways to run a node", async () => {
    const start = run("npm", ["start", "--", "--port", "0"]);
    const url = (await start.printed(/havn is up at (http:\/\/\S+)/))[1]!;
    expect(start.out.stdout).toContain(`API docs     ${url}/docs`);

    const ask = run("npx", ["havn", "ask", "Hello, network", "--coordinator", url]);
    expect(await ask.exited).toBe(0);
    const id = /\njob: (job-[0-9a-f]+)\n$/.exec(ask.out.stdout)![1]!;
    const receipt = run("npx", ["havn", "receipt", id, "--coordinator", url]);
    expect(await receipt.exited).toBe(0);
    const verify = run("npx", ["havn", "log", "verify", "--coordinator", url]);
    expect(await verify.exited).toBe(0);
    expect(verify.out.stdout).toMatch(/\nverified\n$/);

    const serve = run("npx", ["havn", "serve-model", "--port", "0"]);
    const modelUrl = (await serve.printed(/serving havn-tiny at (http:\/\/\S+)/))[1]!;
    expect(modelUrl).toMatch(/\/v1$/);
    const openaiNode = run("npx", [
      "havn",
      "node",
      "--coordinator",
      url,
      "--backend",
      "openai",
      "--backend-url",
      modelUrl,
      "--model",
      "havn-tiny",
      "--name",
      "my-4090",
      "--data-dir",
      join(home, "openai-node"),
    ]);
    await openaiNode.printed(/node my-4090 connected/);

    const gguf = join(home, "Qwen2.5-7B-Instruct-Q4_K_M.gguf");
    writeFileSync(gguf, buildTinyModel());
    const fileNode = run("npx", ["havn", "node", "--coordinator", url, "--model-file", gguf]);
    await fileNode.printed(/connected to/);
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data.map((m) => m.id).sort()).toEqual(["Qwen2.5-7B-Instruct-Q4_K_M", "havn-tiny"]);
    for (const c of [fileNode, openaiNode, serve, start]) stop(c.child);
  });

  it("a production coordinator: admin create, the coordinator, login --register, keys, whoami, two ways to join", async () => {
    const secrets = join(home, "etc");
    mkdirSync(secrets, { recursive: true });
    const tokenFile = join(secrets, "join-token");
    writeFileSync(tokenFile, "a-join-token-from-a-file\n", { mode: 0o600 });
    const config = { HAVN_CONFIG_HOME: join(home, "config") };

    const admin = run("npx", ["havn", "admin", "create", "--email", "ops@example.com"], {
      HAVN_PASSWORD: "ops-password-123",
    });
    expect(await admin.exited).toBe(0);
    expect(admin.out.stdout).toMatch(/^created admin ops@example\.com \(acc-[0-9a-f]+\)\n$/);
    const coordinator = run("npx", ["havn", "coordinator", "--host", "0.0.0.0", "--port", "0"], {
      HAVN_JOIN_TOKEN_FILE: tokenFile,
    });
    const port = (await coordinator.printed(/listening at http:\/\/\S+:(\d+) \(production mode\)/))[1]!;
    const url = `http://127.0.0.1:${port}`;
    const at = ["--coordinator", url];

    const login = run(
      "npx",
      ["havn", "login", ...at, "--email", "me@example.com", "--register", "--password-stdin"],
      config,
      "my-password-123\n",
    );
    expect(await login.exited).toBe(0);
    expect(login.out.stdout).toMatch(/^registered and logged in to .* as me@example\.com \(acc-[0-9a-f]+\)\n$/);
    const created = run("npx", ["havn", "keys", "create", "--name", "laptop", "--scopes", "jobs", ...at], config);
    expect(await created.exited).toBe(0);
    expect(created.out.stdout).toMatch(/^havn_sk_[\w-]{43}\n$/);
    const who = run("npx", ["havn", "whoami", ...at], config);
    expect(await who.exited).toBe(0);
    expect(who.out.stdout).toMatch(/^me@example\.com \(acc-[0-9a-f]+\) via a login; scopes: jobs, node\n/);

    // The admin (logged in on their own machine) credits me; I see it.
    const ops = { HAVN_CONFIG_HOME: join(home, "ops-config") };
    const opsLogin = run(
      "npx",
      ["havn", "login", ...at, "--email", "ops@example.com", "--password-stdin"],
      ops,
      "ops-password-123\n",
    );
    expect(await opsLogin.exited).toBe(0);
    const credit = run(
      "npx",
      ["havn", "admin", "credit", "--email", "me@example.com", "--amount", "10", "--reason", "first deposit", ...at],
      ops,
    );
    expect(await credit.exited).toBe(0);
    expect(credit.out.stdout).toMatch(/^credited 10 HAI to custodial:acc-[0-9a-f]+ /);
    const balance = run("npx", ["havn", "balance", "--history", ...at], config);
    expect(await balance.exited).toBe(0);
    expect(balance.out.stdout).toMatch(/^10 HAI \(custodial:acc-[0-9a-f]+\)\n.* credit +\+10 HAI\n$/);

    const own = run("npx", ["havn", "node", ...at, "--name", "my-4090", "--data-dir", join(home, "own-node")], config);
    await own.printed(/node my-4090 connected/);

    // Its stake: a second deposit, bonded; part of it unbonded; then governance and the pool.
    const deposit = run(
      "npx",
      ["havn", "admin", "credit", "--email", "me@example.com", "--amount", "2000", "--reason", "stake", ...at],
      ops,
    );
    expect(await deposit.exited).toBe(0);
    const stake = run("npx", ["havn", "stake", "2000", "--node", "my-4090", ...at], config);
    expect(await stake.exited).toBe(0);
    expect(stake.out.stdout).toMatch(
      /^bonded 2000 HAI\nmy-4090 +2000 HAI bonded {2}floor 2000 HAI {2}1 slot routed\n$/,
    );
    const unstake = run("npx", ["havn", "unstake", "500", "--node", "my-4090", ...at], config);
    expect(await unstake.exited).toBe(0);
    expect(unstake.out.stdout).toMatch(
      /^unbonding 500 HAI: paid back \S+\nmy-4090 +1500 HAI bonded .*held: below_floor/,
    );
    const params = run("npx", ["havn", "params", ...at], config);
    expect(await params.exited).toBe(0);
    expect(params.out.stdout).toMatch(/^stake\.floor_S +2000000000 µHAI +config$/m);
    const propose = run(
      "npx",
      ["havn", "propose", "set", "stake.floor_S=1500000000", "--reason", "cheaper entry for CPU nodes", ...at],
      config,
    );
    expect(await propose.exited).toBe(0);
    const proposal = /^(prop-[0-9a-f-]{36}) {2}voting /.exec(propose.out.stdout)![1]!;
    const vote = run("npx", ["havn", "vote", proposal, "yes", ...at], config);
    expect(await vote.exited).toBe(0);
    expect(vote.out.stdout).toBe("voted yes with 1500 HAI of stake\n");
    const pool = run("npx", ["havn", "pool", ...at], config);
    expect(await pool.exited).toBe(0);
    expect(pool.out.stdout).toMatch(/^period \S+ → \S+: /);
    const community = run("npx", ["havn", "node", ...at, "--data-dir", join(home, "community-node")], {
      HAVN_JOIN_TOKEN_FILE: tokenFile,
    });
    await community.printed(/connected to/);
    const nodes = (await (
      await fetch(`${url}/v1/nodes`, { headers: { authorization: `Bearer ${created.out.stdout.trim()}` } })
    ).json()) as { error: { code: string } };
    expect(nodes.error.code).toBe("AUTH_FORBIDDEN"); // a user's jobs key is no operator's
    for (const c of [community, own, coordinator]) stop(c.child);
  });

  it("npm run build and npm run docs (written elsewhere: the drift tests compare docs/)", async () => {
    const build = run("npm", ["run", "build"]);
    expect(await build.exited).toBe(0);
    expect(build.out.stdout).toMatch(/havn build: 9 workspaces compiled to dist\//);
    const out = join(home, "docs");
    const docs = run("npm", ["run", "docs"], { HAVN_DOCS_OUT: out });
    expect(await docs.exited).toBe(0);
    for (const file of ["errors.md", "wire-schemas.json", "openapi.json"])
      expect(readFileSync(join(out, file), "utf8")).toBe(readFileSync(join(root, "docs", file), "utf8"));
  });

  it("npm run bench (a smoke run: every part, a few requests each)", async () => {
    const bench = run("npm", ["run", "bench", "--", "smoke"]);
    expect(await bench.exited).toBe(0);
    expect(bench.out.stdout).toContain("SMOKE RUN");
    for (const part of ["(a) CLI start-up", "(b) Overhead", "(c) Throughput", "Targets (reported, not gated):"])
      expect(bench.out.stdout).toContain(part);
    expect(bench.out.stdout).not.toMatch(/\d+ errors/);
  }, 180_000);
});
