import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { watch } from "./watched.js";

// Accounts as a user and an operator meet them: a production coordinator, the CLI, real processes.
const bin = fileURLToPath(new URL("../bin/havn.js", import.meta.url));
const children: ChildProcess[] = [];
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "havn-acct-"));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const home = tempDir();
const config = tempDir();
const joinToken = "a-join-token-of-this-network";
const baseEnv = {
  ...process.env,
  HAVN_HOME: home,
  HAVN_CONFIG_HOME: config,
  HAVN_COORDINATOR: "",
  HAVN_API_KEY: "",
  HAVN_JOIN_TOKEN: "",
};

const havn = (args: string[], env: Record<string, string> = {}, input?: string) =>
  watch(children, process.execPath, [bin, ...args], { env: { ...baseEnv, ...env }, input });
const run = async (args: string[], env: Record<string, string> = {}, input?: string) => {
  const h = havn(args, env, input);
  const code = await h.exited;
  return { code, ...h.out };
};

async function coordinator(dataDir: string) {
  const c = havn(["coordinator", "--port", "0", "--data-dir", dataDir], {
    HAVN_ADMIN_EMAIL: "root@example.com",
    HAVN_ADMIN_PASSWORD: "root-password-123",
    HAVN_JOIN_TOKEN: joinToken,
  });
  const url = (await c.printed(/listening at (http:\/\/\S+) \(production mode\)/))[1]!;
  return { ...c, url };
}

describe("a production coordinator, as its admin and a user meet it", () => {
  it("admin logs in, makes keys; a node joins with the join token; ask uses the saved login; strangers are refused", async () => {
    const c = await coordinator(tempDir());
    // Nothing without a credential.
    const anonymous = await run(["ask", "hi", "--coordinator", c.url, "--model", "havn-tiny"]);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/^error AUTH_REQUIRED: /m);

    const login = await run(
      ["login", "--coordinator", c.url, "--email", "root@example.com", "--password-stdin"],
      {},
      "root-password-123\n",
    );
    expect([login.code, login.stdout]).toEqual([
      0,
      `logged in to ${c.url} as root@example.com (${/acc-[0-9a-f]+/.exec(login.stdout)![0]}, admin)\n`,
    ]);
    const saved = join(config, "credentials.json");
    expect(statSync(saved).mode & 0o777).toBe(0o600);
    const who = await run(["whoami", "--coordinator", c.url]);
    expect(who.stdout).toMatch(
      /^root@example\.com \(acc-[0-9a-f]+, admin\) via a login; scopes: jobs, node, admin, metrics\n/,
    );
    // The access token has run out and two commands refresh the login at once: both go on (the
    // second uses what the first saved), and the login survives.
    const file = JSON.parse(readFileSync(saved, "utf8")) as Record<string, { access_expires_at?: number }>;
    for (const entry of Object.values(file)) entry.access_expires_at = 0;
    writeFileSync(saved, JSON.stringify(file), { mode: 0o600 });
    const both = await Promise.all([run(["whoami", "--coordinator", c.url]), run(["whoami", "--coordinator", c.url])]);
    expect(both.map((r) => [r.code, r.stderr])).toEqual([
      [0, ""],
      [0, ""],
    ]);
    expect((await run(["whoami", "--coordinator", c.url])).code).toBe(0);

    const created = await run(["keys", "create", "--name", "ci", "--scopes", "jobs", "--coordinator", c.url]);
    expect(created.code).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^havn_sk_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toMatch(/this is the only time the key is shown/);
    const listed = await run(["keys", "list", "--coordinator", c.url]);
    expect(listed.stdout).toMatch(/key-[0-9a-f]+ {2}havn_sk_[\w-]{12}… {2}ci/);
    expect(listed.stdout).not.toContain(key);

    // A node with the network's join token (from the environment, never argv).
    const node = havn(["node", "--coordinator", c.url, "--data-dir", tempDir(), "--name", "gpu-1"], {
      HAVN_JOIN_TOKEN: joinToken,
    });
    await node.printed(/connected to/);
    // A paid network: nothing runs on an empty balance; an admin's credit (a deposit) pays.
    const broke = await run(["ask", "hello", "--coordinator", c.url, "--model", "havn-tiny", "--max-tokens", "8"]);
    expect([broke.code, broke.stderr]).toEqual([1, expect.stringMatching(/^error LEDGER_INSUFFICIENT_FUNDS: /m)]);
    const credited = await run([
      "admin",
      "credit",
      "--email",
      "root@example.com",
      "--amount",
      "12.5",
      "--reason",
      "first deposit",
      "--coordinator",
      c.url,
    ]);
    expect(credited.stdout).toMatch(/^credited 12\.5 HAI to custodial:acc-[0-9a-f]+ \(ltx-[0-9a-f]+\)\n$/);
    expect((await run(["balance", "--coordinator", c.url])).stdout).toMatch(
      /^12\.5 HAI \(custodial:acc-[0-9a-f]+\)\n$/,
    );
    // The node has no operator to bond its stake: the admin bonds its collateral floor (2 000 HAI
    // for class S) from a second deposit, and the node gets jobs.
    await run([
      "admin",
      "credit",
      "--email",
      "root@example.com",
      "--amount",
      "2000",
      "--reason",
      "stake",
      "--coordinator",
      c.url,
    ]);
    const short = await run(["stake", "2013", "--node", "gpu-1", "--coordinator", c.url]);
    expect([short.code, short.stderr]).toEqual([1, expect.stringMatching(/^error LEDGER_INSUFFICIENT_FUNDS: /m)]);
    const staked = await run(["stake", "2000", "--node", "gpu-1", "--coordinator", c.url]);
    expect(staked.stdout).toMatch(/^bonded 2000 HAI\ngpu-1 +2000 HAI bonded {2}floor 2000 HAI/);
    const asked = await run(["ask", "hello", "--coordinator", c.url, "--model", "havn-tiny", "--max-tokens", "8"]);
    expect(asked.code).toBe(0);
    const history = await run(["balance", "--history", "--coordinator", c.url]);
    expect(history.stdout).toMatch(/ charge +\+[0-9.]+ HAI {2}job-/);
    expect(history.stdout).toMatch(/ credit +\+12\.5 HAI\n/);
    const json = JSON.parse((await run(["balance", "--json", "--coordinator", c.url])).stdout) as {
      balance_uhai: string;
    };
    expect(BigInt(json.balance_uhai)).toBeLessThan(12_500_000n);
    expect(asked.stdout).toMatch(/\njob: job-[0-9a-f]+\n$/);
    const withKey = await run(["ask", "hello", "--coordinator", c.url, "--model", "havn-tiny", "--max-tokens", "8"], {
      HAVN_API_KEY: key,
      HAVN_CONFIG_HOME: tempDir(),
    });
    expect(withKey.code).toBe(0);

    // The admin's own node, with nothing but the saved login: it makes a node key once and keeps it.
    const ownDir = tempDir();
    for (let i = 0; i < 2; i++) {
      const own = havn(["node", "--coordinator", c.url, "--data-dir", ownDir, "--name", "roots-gpu"]);
      await own.printed(/connected to/);
      own.child.kill("SIGTERM");
      await own.exited;
    }
    expect(statSync(join(ownDir, "node-api-key.json")).mode & 0o777).toBe(0o600);
    const nodeKeys = (await run(["keys", "list", "--coordinator", c.url])).stdout
      .split("\n")
      .filter((l) => /\bnode\b/.test(l));
    expect(nodeKeys).toHaveLength(1);

    // A node without a credential is refused for good, with the fix.
    const stranger = await run(["node", "--coordinator", c.url, "--data-dir", tempDir()], {
      HAVN_CONFIG_HOME: tempDir(),
    });
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toMatch(/^error NODE_CREDENTIAL_REQUIRED: .*--join-token/m);

    const id = /key-[0-9a-f]+/.exec(listed.stdout)![0];
    expect((await run(["keys", "revoke", id, "--coordinator", c.url])).code).toBe(0);
    const revoked = await run(["ask", "hello", "--coordinator", c.url, "--model", "havn-tiny"], {
      HAVN_API_KEY: key,
      HAVN_CONFIG_HOME: tempDir(),
    });
    expect(revoked.stderr).toMatch(/^error AUTH_INVALID: /m);
    expect((await run(["logout", "--coordinator", c.url])).stdout).toBe(`logged out of ${c.url}\n`);
    node.child.kill("SIGTERM");
    c.child.kill("SIGTERM");
  });

  it("havn admin create writes an admin on the coordinator's host; a second with the email is refused", async () => {
    const dataDir = tempDir();
    const made = await run(
      ["admin", "create", "--email", "ops@example.com", "--password-stdin", "--data-dir", dataDir],
      {},
      "ops-password-12\n",
    );
    expect(made.code).toBe(0);
    expect(made.stdout).toMatch(/^created admin ops@example\.com \(acc-[0-9a-f]+\)\n$/);
    const again = await run(
      ["admin", "create", "--email", "ops@example.com", "--password-stdin", "--data-dir", dataDir],
      {},
      "ops-password-12\n",
    );
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^error AUTH_EMAIL_TAKEN/m);
  });

  it("the same Idempotency-Key across a kill -9 of the coordinator: one job, one run", async () => {
    const dataDir = tempDir();
    let c = await coordinator(dataDir);
    const login = await fetch(`${c.url}/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "root@example.com", password: "root-password-123" }),
    });
    const token = ((await login.json()) as { access_token: string }).access_token;
    const keyRes = await fetch(`${c.url}/v1/api-keys`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ name: "retry", scopes: ["jobs"] }),
    });
    const key = ((await keyRes.json()) as { key: string }).key;
    await fetch(`${c.url}/v1/admin/ledger/credit`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ email: "root@example.com", amount_uhai: "10000000", reason: "test funds" }),
    });
    const node = havn(
      ["node", "--coordinator", c.url, "--data-dir", tempDir(), "--metrics-port", "0", "--name", "retry-node"],
      { HAVN_JOIN_TOKEN: joinToken },
    );
    await node.printed(/connected to/);
    // Its collateral floor, bonded by the admin: stake survives the coordinator's kill -9.
    await fetch(`${c.url}/v1/admin/ledger/credit`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ email: "root@example.com", amount_uhai: "2000000000", reason: "stake" }),
    });
    const bonded = await fetch(`${c.url}/v1/stake`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ node: "retry-node", amount_uhai: "2000000000" }),
    });
    expect(bonded.status).toBe(200);
    const ask = (url: string) =>
      fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}`, "idempotency-key": "retry-me" },
        body: JSON.stringify({ model: "havn-tiny", messages: [{ role: "user", content: "once" }], max_tokens: 8 }),
      }).then((r) => r.json() as Promise<{ id: string; choices: unknown }>);
    const first = await ask(c.url);
    const port = new URL(c.url).port;
    c.child.kill("SIGKILL");
    await c.exited;
    c = { ...(await coordinatorOn(dataDir, port)) };
    await new Promise((r) => setTimeout(r, 300));
    const second = await ask(c.url);
    expect(second.id).toBe(first.id);
    expect(second.choices).toEqual(first.choices);
    const metricsUrl = /"url":"(http:[^"]+\/metrics)"/.exec(node.out.stderr)![1]!;
    const metrics = await (await fetch(metricsUrl)).text();
    expect(metrics).toMatch(/^havn_node_jobs_total\{model="havn-tiny",outcome="completed"\} 1$/m);
    node.child.kill("SIGTERM");
    c.child.kill("SIGTERM");
  });
});

/** A coordinator on a given port and data dir (a restart). */
async function coordinatorOn(dataDir: string, port: string) {
  const c = havn(["coordinator", "--port", port, "--data-dir", dataDir], { HAVN_JOIN_TOKEN: joinToken });
  const url = (await c.printed(/listening at (http:\/\/\S+) \(production mode\)/))[1]!;
  return { ...c, url };
}
