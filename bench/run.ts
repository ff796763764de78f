// `npm run bench`: havn measured side by side with what it is compared against, on loopback.
//
//   (a) start-up:   `havn --version`, `--help` and `ask` beside `node -e 0` (and through npx)
//   (b) overhead:   a chat completion straight to the backend, through a two-hop reference proxy
//                   chain, and through havn (coordinator + node: also two hops)
//   (c) throughput: jobs/s through havn on SQLite and PostgreSQL beside the same load straight to a
//                   backend and through the reference chain
//
// Every figure is a set of trials in which the compared targets run interleaved, in an order that
// rotates each trial, so a drift of this VM's speed lands on all of them; medians are reported with
// their range, and each trial prints the machine's load, one core's speed and the CPU that
// processes outside the bench used meanwhile (a trial where they used more than a quarter of a core
// is flagged CONTENDED). havn runs as the CLI runs it, with its defaults (see `cliSettings`).
//
// `npm run bench -- startup overhead instant paced throughput sqlite postgres routing fleet` runs only the parts
// named; no names runs everything but `logging` (the cost of per-job log lines), which runs only
// when named. `npm run bench -- smoke` runs every part with a few requests each: a check that the
// bench works (a test runs it), not a measurement.
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, sign, verify } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { availableParallelism, loadavg, setPriority, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { startEmbeddedPostgres } from "@havn/store/embedded-postgres";
import { routingBench } from "./routing.ts";

const only = new Set(process.argv.slice(2));
/** A few requests per part: proves the bench runs end to end; its figures mean nothing. */
const smoke = only.delete("smoke");
const wants = (part: string) => only.size === 0 || only.has(part);

const roles = fileURLToPath(new URL("./roles.ts", import.meta.url));
const havnBin = fileURLToPath(new URL("../apps/cli/bin/havn.js", import.meta.url));
const children: ChildProcess[] = [];
/** Data dirs, logs and databases of this run; removed at the end. */
const scratch = mkdtempSync(join(tmpdir(), "havn-bench-"));
let scratchCount = 0;
const scratchDir = (name: string) => join(scratch, `${name}-${++scratchCount}`);

/** How havn runs here, and where it differs from the CLI's defaults. */
const cliSettings = [
  "`havn coordinator --port 0 --data-dir <fresh> --rate-limit 0`: production mode and every other",
  "  default (SQLite, log level info, JSON logs to a file, as a service's logs go); PostgreSQL through",
  "  --database-url. Requests carry an API key; nodes join with the join token. No rate limit: the",
  "  bench measures capacity, and one key sends far more than the default 1,200 a minute;",
  "`havn node --backend openai --backend-url <backend>/v1 --slots 128`: the default of 4 slots suits",
  "  one GPU; the bench backend serves 1,024 at once, and 4 would queue jobs at the node.",
];

/** The bench's credentials: the network's join token, and an admin whose API key the load carries. */
const joinToken = `bench-join-${Math.random().toString(36).slice(2)}-token`;
const admin = { email: "bench@example.com", password: "bench-password-1" };
/** API key per coordinator URL (each trial's coordinator is fresh). */
const apiKeys = new Map<string, string>();

async function apiKeyFor(coordinator: string): Promise<string> {
  const known = apiKeys.get(coordinator);
  if (known) return known;
  const post = async (path: string, body: unknown, token?: string) => {
    const r = await fetch(`${coordinator}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
    return (await r.json()) as Record<string, string>;
  };
  const session = await post("/auth/login", admin);
  const key = (await post("/v1/api-keys", { name: "bench", scopes: ["jobs"] }, session.access_token!)).key!;
  // A paid network: the admin funds its own account (a free one answers the same, and moves nothing).
  await post(
    "/v1/admin/ledger/credit",
    { email: admin.email, amount_uhai: "1000000000000000", reason: "bench" },
    session.access_token!,
  );
  apiKeys.set(coordinator, key);
  sessions.set(coordinator, session.access_token!);
  return key;
}

/** The admin's login per coordinator URL (it bonds the nodes' stake). */
const sessions = new Map<string, string>();

/**
 * Stake for the bench's nodes, which join with the join token and so have no operator to bond
 * it: once `count` nodes are online, the admin bonds each the stake its slots need (a free
 * network has no stake, and needs none).
 */
async function bondNodes(coordinator: string, count: number): Promise<void> {
  await apiKeyFor(coordinator);
  const token = sessions.get(coordinator)!;
  const headers = { "content-type": "application/json", authorization: `Bearer ${token}` };
  let nodes: { key: string; slots: number; held: string | null; compute_class: string }[] = [];
  for (let i = 0; i < 600 && nodes.length < count; i++) {
    const r = await fetch(`${coordinator}/v1/nodes`, { headers });
    nodes = ((await r.json()) as { data: typeof nodes }).data.filter((n) => n.slots !== undefined);
    if (nodes.length < count) await new Promise((r) => setTimeout(r, 50));
  }
  for (const n of nodes) {
    if (n.held !== "below_floor") continue;
    const stake = (await (await fetch(`${coordinator}/v1/stake/${n.key}`)).json()) as { floor_uhai: string };
    const r = await fetch(`${coordinator}/v1/stake`, {
      method: "POST",
      headers,
      // Enough for 64 slots (the most a node may advertise): eight floors.
      body: JSON.stringify({ node: n.key, amount_uhai: (BigInt(stake.floor_uhai) * 8n).toString() }),
    });
    if (!r.ok) throw new Error(`bonding ${n.key}: HTTP ${r.status} ${await r.text()}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

function waitForUrl(child: ChildProcess, pattern: RegExp, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = pattern.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once("exit", (code) => reject(new Error(`${what} exited with ${code}: ${out}`)));
  });
}

/** A process of bench/roles.ts; resolves with the URL it serves. */
function startRole(role: string, options: object = {}): Promise<string> {
  const child = spawn(process.execPath, ["--import", "tsx", roles, role, JSON.stringify({ joinToken, ...options })], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  return waitForUrl(child, /READY (\S+)/, role);
}

/** The real `havn` binary; its logs go to a file. Resolves with the first URL it prints. */
function startHavn(args: string[]): Promise<string> {
  const log = openSync(`${scratchDir("log")}.jsonl`, "w");
  // HAVN_BENCH_PROFILE=<dir>: the fleet part's coordinator writes a V8 CPU profile there.
  const profile = args[0] === "coordinator" && profiling ? process.env.HAVN_BENCH_PROFILE : undefined;
  const child = spawn(
    process.execPath,
    [...(profile ? ["--cpu-prof", `--cpu-prof-dir=${profile}`] : []), havnBin, ...args],
    {
      stdio: ["ignore", "pipe", log],
      env: {
        ...process.env,
        HAVN_HOME: scratchDir("home"),
        HAVN_JOIN_TOKEN: joinToken,
        HAVN_ADMIN_EMAIL: admin.email,
        HAVN_ADMIN_PASSWORD: admin.password,
      },
    },
  );
  closeSync(log);
  children.push(child);
  return waitForUrl(child, /(http:\/\/127\.0\.0\.1:\d+)/, `havn ${args[0]}`);
}

function stopAll() {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
}

// ---------------------------------------------------------------------------------------------
// The machine

/** One core's speed now: µs per Ed25519 verification (the CPU work every job does most of). */
function coreSpeedUs(): number {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const message = Buffer.alloc(600, 7);
  const signature = sign(null, message, privateKey);
  const times = [0, 1, 2].map(() => {
    const t0 = performance.now();
    for (let i = 0; i < 300; i++) verify(null, message, publicKey, signature);
    return (performance.now() - t0) / 0.3;
  });
  return Math.min(...times);
}

const ticksPerSecond = 100; // USER_HZ on Linux

/** CPU seconds used by the whole machine and by this process and its descendants. */
function cpuSample(): { busy: number; ours: number; at: number } {
  const at = performance.now();
  try {
    const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = cpu[3]! + cpu[4]!;
    const busy = cpu.reduce((a, b) => a + b, 0) - idle;
    const parent = new Map<number, number>();
    const used = new Map<number, number>();
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        parent.set(Number(entry), Number(fields[1]));
        // utime + stime, and cutime + cstime: the children it has reaped (exited commands).
        used.set(Number(entry), Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]));
      } catch {
        // exited meanwhile
      }
    }
    let ours = 0;
    for (const [pid, ticks] of used) {
      for (let p: number | undefined = pid; p !== undefined && p > 1; p = parent.get(p)) {
        if (p === process.pid) {
          ours += ticks;
          break;
        }
      }
    }
    return { busy: busy / ticksPerSecond, ours: ours / ticksPerSecond, at };
  } catch {
    return { busy: 0, ours: 0, at };
  }
}

/** Cores' worth of CPU that processes outside the bench used between two samples. */
const othersCores = (a: ReturnType<typeof cpuSample>, b: ReturnType<typeof cpuSample>) =>
  Math.max(0, b.busy - a.busy - (b.ours - a.ours)) / ((b.at - a.at) / 1000);
const contendedAbove = 0.25;

/** Prints a trial's conditions; returns whether it was contended. */
function trialHeader(label: string, before: ReturnType<typeof cpuSample>, core: number): () => boolean {
  const load = loadavg()[0]!.toFixed(2);
  return () => {
    const others = othersCores(before, cpuSample());
    const contended = others > contendedAbove;
    console.log(
      `      ${label}: load ${load}, core ${core.toFixed(0)} µs/verify, others used ${others.toFixed(2)} cores${contended ? "  CONTENDED" : ""}`,
    );
    return contended;
  };
}

// ---------------------------------------------------------------------------------------------
// Statistics

function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length / 2;
  return s.length % 2 ? s[Math.floor(mid)]! : (s[mid - 1]! + s[mid]!) / 2;
};
const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "—");
/** `median (min–max)` */
const spread = (xs: readonly number[], digits = 2) =>
  `${fmt(median(xs), digits)} (${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)})`;
const rotate = <T>(xs: readonly T[], k: number) => xs.map((_, i) => xs[(i + k) % xs.length]!);

// ---------------------------------------------------------------------------------------------
// Load

/**
 * The i-th request of a run. Requests differ, so a paced backend takes a different time for
 * each (as a real model does); every target gets the same sequence, so all see the same backend
 * times and their difference is what stands between the client and the backend.
 */
const bodyOf = (i: number) =>
  JSON.stringify({
    model: "havn-tiny",
    messages: [{ role: "user", content: `benchmark ${i}` }],
    max_tokens: 8,
    temperature: 0,
    seed: i,
  });

/**
 * Sends `warmUp + total` POSTs with `concurrency` in flight over keep-alive connections, as one
 * closed loop: the measured requests run on warm connections, in steady state, with no burst of
 * `concurrency` clients starting at once. Returns the measured requests' latencies in ms.
 */
async function load(url: string, concurrency: number, warmUp: number, total: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  // havn wants a credential; the backend and the proxies ignore it.
  const authorization = `Bearer ${apiKeys.get(url) ?? "none"}`;
  const target = new URL("/v1/chat/completions", url);
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  let started = performance.now();
  const one = (body: string, measured: boolean) =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const req = request(
        target,
        {
          method: "POST",
          agent,
          headers: {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
            authorization,
          },
        },
        (res) => {
          res.resume();
          res.on("end", () => {
            if (res.statusCode !== 200) errors++;
            else if (measured) latencies.push(performance.now() - t0);
            resolve();
          });
        },
      );
      req.on("error", () => {
        errors++;
        resolve();
      });
      req.end(body);
    });
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < warmUp + total) {
        const i = next++;
        if (i === warmUp) started = performance.now();
        await one(bodyOf(i), i >= warmUp);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { latencies, seconds, errors, perSecond: latencies.length / seconds };
}

/** A two-hop chain of minimal reverse proxies in front of `backend`: havn's shape, none of its work. */
async function referenceChain(backend: string): Promise<string> {
  const second = await startRole("proxy", { target: backend });
  return startRole("proxy", { target: second });
}

/** A production coordinator as the CLI runs it, with an API key ready for the load. */
async function startHavnCoordinator(databaseUrl?: string, extra: string[] = []): Promise<string> {
  const url = await startHavn([
    "coordinator",
    "--port",
    "0",
    "--data-dir",
    scratchDir("coordinator"),
    "--rate-limit",
    "0",
    ...(databaseUrl ? ["--database-url", databaseUrl] : []),
    ...extra,
  ]);
  await apiKeyFor(url);
  return url;
}

/** A coordinator and an openai node as the CLI runs them, in front of `backend`. */
async function havnInFront(backend: string, databaseUrl?: string): Promise<string> {
  const coordinator = await startHavnCoordinator(databaseUrl);
  await startHavn([
    "node",
    "--coordinator",
    coordinator,
    "--backend",
    "openai",
    "--backend-url",
    `${backend}/v1`,
    "--slots",
    "128",
    "--data-dir",
    scratchDir("node"),
  ]);
  await bondNodes(coordinator, 1);
  return coordinator;
}

// ---------------------------------------------------------------------------------------------
// (a) Start-up

/** The API key `havn ask` sends (HAVN_API_KEY), for the start-up part's coordinator. */
let askKey = "";

function timeCommand(command: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    execFile(command, args, { env: { ...process.env, HAVN_HOME: scratch, HAVN_API_KEY: askKey } }, (err) => {
      if (err) reject(err);
      else resolve(performance.now() - t0);
    });
  });
}

async function startup() {
  console.log("\n(a) CLI start-up: wall time of whole processes, interleaved, ms");
  const backend = await startRole("backend", {});
  const coordinator = await havnInFront(backend);
  askKey = apiKeys.get(coordinator)!;
  const node = process.execPath;
  const commands: [string, string, string[]][] = [
    ["node -e 0", node, ["-e", "0"]],
    ["havn --version", node, [havnBin, "--version"]],
    ["havn --help", node, [havnBin, "--help"]],
    [
      "havn ask (8 tokens)",
      node,
      [havnBin, "ask", "start-up", "--coordinator", coordinator, "--model", "havn-tiny", "--max-tokens", "8"],
    ],
  ];
  const viaNpx: [string, string, string[]][] = [
    ["npx node -e 0", "npx", ["node", "-e", "0"]],
    ["npx havn --version", "npx", ["havn", "--version"]],
  ];
  const times = new Map<string, number[]>();
  const rounds = async (set: typeof commands, n: number) => {
    for (const [, cmd, args] of set) await timeCommand(cmd, args); // warm the page cache
    for (let round = 0; round < n; round++) {
      for (const [name, cmd, args] of rotate(set, round)) {
        const list = times.get(name) ?? [];
        list.push(await timeCommand(cmd, args));
        times.set(name, list);
      }
    }
  };
  const before = cpuSample();
  const done = trialHeader("15 rounds (7 through npx)", before, coreSpeedUs());
  await rounds(commands, smoke ? 2 : 15);
  await rounds(viaNpx, smoke ? 1 : 7);
  done();
  const base = times.get("node -e 0")!;
  const npxBase = times.get("npx node -e 0")!;
  console.log(`    ${"command".padEnd(22)} ${"median (min–max)".padEnd(26)} minus its baseline (median of pairs)`);
  const results: Record<string, { median: number; overBase: number }> = {};
  for (const [name, list] of times) {
    const baseList = name.startsWith("npx") ? npxBase : base;
    const over = median(list.map((t, i) => t - baseList[i]!));
    results[name] = { median: median(list), overBase: over };
    const baseline = name === "node -e 0" || name === "npx node -e 0" ? "" : `+${fmt(over, 0)} ms`;
    console.log(`    ${name.padEnd(22)} ${spread(list, 0).padEnd(26)} ${baseline}`);
  }
  stopAll();
  return results;
}

// ---------------------------------------------------------------------------------------------
// (b) Overhead

interface Profile {
  readonly name: string;
  readonly description: string;
  readonly tokenDelayMs: number;
  readonly tokenDelayJitterMs: number;
  readonly runs: readonly { readonly concurrency: number; readonly requests: number; readonly trials: number }[];
}

const profiles: readonly Profile[] = [
  {
    name: "instant",
    description: "backend answers at once (8 tokens): the cost of the hops; at 64 in flight, capacity",
    tokenDelayMs: 0,
    tokenDelayJitterMs: 0,
    runs: [
      { concurrency: 1, requests: 600, trials: 5 },
      { concurrency: 64, requests: 4_000, trials: 5 },
    ],
  },
  {
    name: "paced",
    description: "backend takes 15–35 ms a token (8 tokens, ~200 ms, no CPU): a model on a GPU elsewhere",
    tokenDelayMs: 25,
    tokenDelayJitterMs: 10,
    runs: [
      { concurrency: 1, requests: 60, trials: 3 },
      { concurrency: 64, requests: 2_000, trials: 3 },
    ],
  },
];

const smokeRuns = [
  { concurrency: 1, requests: 20, trials: 1 },
  { concurrency: 8, requests: 100, trials: 1 },
];
const targets = ["direct", "reference", "havn"] as const;

async function overhead(profile: Profile) {
  console.log(`\n    ${profile.name}: ${profile.description}`);
  const backend = await startRole("backend", {
    tokenDelayMs: profile.tokenDelayMs,
    tokenDelayJitterMs: profile.tokenDelayJitterMs,
  });
  const urls = { direct: backend, reference: await referenceChain(backend), havn: await havnInFront(backend) };
  const rows = [];
  for (const { concurrency, requests, trials } of smoke ? smokeRuns : profile.runs) {
    const warmUp = Math.min(200, Math.ceil(requests / 5));
    console.log(`    concurrency ${concurrency}, ${requests} requests after ${warmUp} to warm up, ${trials} trials`);
    const p50 = { direct: [] as number[], reference: [] as number[], havn: [] as number[] };
    const p99 = { direct: [] as number[], reference: [] as number[], havn: [] as number[] };
    let contended = 0;
    for (let t = 0; t < trials; t++) {
      const done = trialHeader(`trial ${t + 1}`, cpuSample(), coreSpeedUs());
      for (const target of rotate(targets, t)) {
        const r = await load(urls[target], concurrency, warmUp, requests);
        if (r.errors > 0) console.log(`      ${target}: ${r.errors} errors`);
        p50[target].push(pct(r.latencies, 50));
        p99[target].push(pct(r.latencies, 99));
      }
      if (done()) contended++;
    }
    const over = (xs: number[], base: number[]) => xs.map((x, i) => x - base[i]!);
    const row = {
      profile: profile.name,
      concurrency,
      p50,
      p99,
      havnOverP50: over(p50.havn, p50.direct),
      havnOverP99: over(p99.havn, p99.direct),
      referenceOverP50: over(p50.reference, p50.direct),
      referenceOverP99: over(p99.reference, p99.direct),
      contended,
    };
    rows.push(row);
    console.log(`      ${"".padEnd(12)} ${"p50, ms".padEnd(24)} ${"p99, ms".padEnd(24)}`);
    for (const target of targets)
      console.log(`      ${target.padEnd(12)} ${spread(p50[target]).padEnd(24)} ${spread(p99[target]).padEnd(24)}`);
    console.log(
      `      added to direct: reference chain p50 ${spread(row.referenceOverP50)}, p99 ${spread(row.referenceOverP99)}`,
    );
    console.log(
      `                       havn            p50 ${spread(row.havnOverP50)}, p99 ${spread(row.havnOverP99)}`,
    );
    const ratio = median(row.havnOverP50) / Math.max(0.01, median(row.referenceOverP50));
    console.log(
      `      havn adds ${fmt(ratio, 1)}× what two bare proxy hops add (p50)${contended ? `; ${contended} contended trial(s)` : ""}`,
    );
  }
  stopAll();
  return rows;
}

// ---------------------------------------------------------------------------------------------
// (c) Throughput

const throughputTrials = smoke ? 1 : 3;
/** In flight, warm-up and measured requests of a throughput run. */
const throughputLoad: [inFlight: number, warmUp: number, measured: number] = smoke
  ? [32, 100, 500]
  : [256, 2_000, 20_000];

async function throughput(stores: readonly ("sqlite" | "postgres")[]) {
  const [inFlight, warmUp, measured] = throughputLoad;
  console.log(
    `\n(c) Throughput: ${inFlight} requests in flight, ${warmUp} to warm up, then ${measured} measured; jobs/s`,
  );
  console.log("    direct: one backend process answering at once; reference: the two-proxy chain to it;");
  console.log("    havn: a fresh `havn coordinator` per trial and 50 nodes (8 slots each) in one other process;");
  console.log("    paid (the default: escrow at admission, charge at completion, settlement) and `--free` (no ledger)");
  let server: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
  let admin: pg.Client | undefined;
  let databases = 0;
  if (stores.includes("postgres")) {
    server = await startEmbeddedPostgres();
    admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
  }
  const freshDatabase = async () => {
    const name = `havn_bench_${++databases}`;
    await admin!.query(`CREATE DATABASE ${name}`);
    return server!.url.replace(/\/postgres$/, `/${name}`);
  };
  const names = [
    "direct",
    "reference",
    ...stores.flatMap((s) => {
      const name = s === "sqlite" ? "havn SQLite" : "havn PostgreSQL";
      return [name, `${name}, free`];
    }),
  ];
  const rates = new Map<string, number[]>(names.map((n) => [n, []]));
  try {
    for (let t = 0; t < throughputTrials; t++) {
      const done = trialHeader(`trial ${t + 1}`, cpuSample(), coreSpeedUs());
      for (const name of rotate(names, t)) {
        let url: string;
        if (name === "direct" || name === "reference") {
          const backend = await startRole("backend", {});
          url = name === "direct" ? backend : await referenceChain(backend);
        } else {
          url = await startHavnCoordinator(
            name.startsWith("havn PostgreSQL") ? await freshDatabase() : undefined,
            name.endsWith(", free") ? ["--free"] : [],
          );
          await startRole("nodes", { coordinator: url, nodes: 50, slots: 8 });
          if (!name.endsWith(", free")) await bondNodes(url, 50);
        }
        const r = await load(url, ...throughputLoad);
        rates.get(name)!.push(r.perSecond);
        console.log(
          `      ${name.padEnd(22)} ${fmt(r.perSecond, 0).padStart(6)} jobs/s   p50 ${fmt(pct(r.latencies, 50), 1)} ms  p99 ${fmt(pct(r.latencies, 99), 1)} ms${r.errors ? `  (${r.errors} errors)` : ""}`,
        );
        stopAll();
      }
      done();
    }
  } finally {
    await admin?.end();
    await server?.stop();
  }
  const reference = median(rates.get("reference")!);
  console.log(`    ${"".padEnd(22)} ${"jobs/s, median (min–max)".padEnd(30)} of the reference chain`);
  for (const [name, list] of rates)
    console.log(`    ${name.padEnd(22)} ${spread(list, 0).padEnd(30)} ${fmt(median(list) / reference, 2)}×`);
  // The ledger's cost, trial by trial: each paid run beside the free run of the same trial.
  for (const store of ["havn SQLite", "havn PostgreSQL"]) {
    const paid = rates.get(store);
    const free = rates.get(`${store}, free`);
    if (!paid || !free) continue;
    const ratios = paid.map((p, i) => p / free[i]!);
    console.log(`    ${`${store}: paid / free`.padEnd(34)} ${spread(ratios, 2)}`);
  }
  return rates;
}

/**
 * `npm run bench -- logging`: what the coordinator's per-job log lines cost — SQLite throughput
 * with the CLI's default (`info`: a line when each job ends) against
 * `--log-level warn`, interleaved.
 */
async function loggingCost() {
  console.log("\n(d) The cost of per-job logs: SQLite throughput at --log-level info (default) and warn, jobs/s");
  const rates = new Map<string, number[]>([
    ["info", []],
    ["warn", []],
  ]);
  for (let t = 0; t < throughputTrials * 2; t++) {
    const done = trialHeader(`trial ${t + 1}`, cpuSample(), coreSpeedUs());
    for (const level of rotate(["info", "warn"], t)) {
      const url = await startHavn([
        "coordinator",
        "--port",
        "0",
        "--data-dir",
        scratchDir("coordinator"),
        "--log-level",
        level,
      ]);
      await startRole("nodes", { coordinator: url, nodes: 50, slots: 8 });
      await bondNodes(url, 50);
      const r = await load(url, ...throughputLoad);
      rates.get(level)!.push(r.perSecond);
      console.log(`      --log-level ${level.padEnd(5)} ${fmt(r.perSecond, 0).padStart(6)} jobs/s`);
      stopAll();
    }
    done();
  }
  for (const [level, list] of rates) console.log(`    ${level.padEnd(6)} ${spread(list, 0)}`);
  console.log(`    info / warn: ${fmt(median(rates.get("info")!) / median(rates.get("warn")!), 3)}`);
}

// ---------------------------------------------------------------------------------------------
// (e) An idle fleet

/** CPU seconds a process has used (user + system), from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A process's resident memory, in MiB. */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : 0;
}

const lastPid = () => children[children.length - 1]!.pid!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The model an idle fleet's nodes serve: one the bench's jobs never ask for. */
const fleetModel = "fleet-idle";

/** The fleet's niceness: its processes stand for other machines (see `startFleet`). */
const fleetNice = 10;

/**
 * Starts `total` idle fleet connections against `url`, in processes of `perProcess`; their pids.
 * The processes run at nice 10: they stand for thousands of other machines, and at equal priority
 * they took ~0.1 of the two cores from the coordinator, the load generator and its nodes (their CPU
 * is reported beside the coordinator's, idle and under load, to show they kept up).
 */
async function startFleet(url: string, total: number, perProcess: number): Promise<number[]> {
  const pids: number[] = [];
  for (let n = 0; n < total; n += perProcess) {
    const welcomed = await startRole("fleet", {
      coordinator: url,
      nodes: Math.min(perProcess, total - n),
      model: fleetModel,
    });
    if (Number(welcomed) !== Math.min(perProcess, total - n))
      console.log(`      a fleet process joined only ${welcomed}`);
    pids.push(lastPid());
    setPriority(lastPid(), fleetNice);
  }
  return pids;
}

/**
 * Bonds each held fleet node its floor (enough for its 8 slots), eight at a time, so the whole
 * fleet is routable: every dispatch pass and every count of free slots sees 10,000 nodes.
 */
async function bondFleet(coordinator: string): Promise<number> {
  const headers = { "content-type": "application/json", authorization: `Bearer ${sessions.get(coordinator)!}` };
  const r = await fetch(`${coordinator}/v1/nodes`, { headers });
  const nodes = ((await r.json()) as { data: { key: string; held: string | null; models: string[] }[] }).data;
  const held = nodes.filter((n) => n.held === "below_floor");
  if (held.length === 0) return 0;
  const { floor_uhai: floor } = (await (await fetch(`${coordinator}/v1/stake/${held[0]!.key}`)).json()) as {
    floor_uhai: string;
  };
  let next = 0;
  const worker = async () => {
    while (next < held.length) {
      const n = held[next++]!;
      const res = await fetch(`${coordinator}/v1/stake`, {
        method: "POST",
        headers,
        body: JSON.stringify({ node: n.key, amount_uhai: floor }),
      });
      if (!res.ok) throw new Error(`bonding ${n.key}: HTTP ${res.status} ${await res.text()}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return held.length;
}

/** The coordinator's CPU per job over a load, in µs, beside the load's result. */
async function loadWithCpu(url: string, pid: number) {
  const c0 = cpuSeconds(pid);
  const r = await load(url, ...throughputLoad);
  // Warm-up and measured jobs alike ran on its CPU.
  return { ...r, cpuPerJobUs: ((cpuSeconds(pid) - c0) * 1e6) / (throughputLoad[1] + throughputLoad[2]) };
}

/** CPU (cores) and the fleet's CPU over an idle window. */
async function idleWindow(pid: number, fleet: number[], ms: number) {
  const c0 = cpuSeconds(pid);
  const f0 = fleet.reduce((a, p) => a + cpuSeconds(p), 0);
  await sleep(ms);
  return {
    cores: (cpuSeconds(pid) - c0) / (ms / 1000),
    fleetCores: (fleet.reduce((a, p) => a + cpuSeconds(p), 0) - f0) / (ms / 1000),
  };
}

/** Set while the fleet part starts its coordinator, when HAVN_BENCH_PROFILE names a directory. */
let profiling = false;

async function fleetBench() {
  const size = smoke ? 200 : 10_000;
  const perProcess = smoke ? 100 : 2_500;
  const windowMs = smoke ? 2_000 : 20_000;
  console.log(`\n(e) An idle fleet: ${size.toLocaleString("en")} node connections (join, then heartbeats every 5 s),`);
  console.log(
    `    ${perProcess.toLocaleString("en")} a process, bonded and routable, serving a model no job asks for; beside none,`,
  );
  console.log("    and against a plain `ws` server holding the same");

  // Each run on a fresh coordinator and database, as in (c): the second would otherwise run on the
  // first's 22,000 jobs.
  // An open catalog (as a network with one operator runs): the fleet may serve its own model.
  const fresh = async () => {
    profiling = true;
    const url = await startHavnCoordinator(undefined, ["--catalog", "open"]);
    profiling = false;
    const pid = lastPid();
    await startRole("nodes", { coordinator: url, nodes: 50, slots: 8 });
    await bondNodes(url, 50);
    return { url, pid };
  };
  // The real-job load with no fleet, and with the fleet connected, on fresh coordinators; in
  // interleaved trials (none first, then fleet first) so the machine's drift falls on both.
  const runNone = async () => {
    const alone = await fresh();
    const r = await loadWithCpu(alone.url, alone.pid);
    stopAll();
    return r;
  };
  const runFleet = async () => {
    const { url, pid: coordinator } = await fresh();
    // Its own idle cost (sweeps, the stake turn, 50 nodes' heartbeats): the fleet's is what it adds.
    const baseline = await idleWindow(coordinator, [], windowMs);
    const rss0 = rssMiB(coordinator);
    const joinStart = performance.now();
    const c0 = cpuSeconds(coordinator);
    const fleet = await startFleet(url, size, perProcess);
    const joinS = (performance.now() - joinStart) / 1000;
    const joinCpuMs = ((cpuSeconds(coordinator) - c0) * 1000) / size;
    // What holding the connections and their heartbeats costs, as the plain server is measured:
    // before bonding, whose 10,000 HTTP requests and ledger transactions leave garbage behind.
    const idleHeld = await idleWindow(coordinator, fleet, windowMs);
    const rssHeld = rssMiB(coordinator);
    const bondStart = performance.now();
    const bonded = await bondFleet(url);
    const bondS = (performance.now() - bondStart) / 1000;
    // Again with the whole fleet routable.
    const idle = await idleWindow(coordinator, fleet, windowMs);
    const rss1 = rssMiB(coordinator);
    const f0 = fleet.reduce((a, p) => a + cpuSeconds(p), 0);
    const loadStart = performance.now();
    const withFleet = await loadWithCpu(url, coordinator);
    const fleetLoadCores =
      (fleet.reduce((a, p) => a + cpuSeconds(p), 0) - f0) / ((performance.now() - loadStart) / 1000);
    if (process.env.HAVN_BENCH_PROFILE) {
      // A clean exit writes the profile.
      const child = children.find((c) => c.pid === coordinator)!;
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
    stopAll();
    return {
      ...withFleet,
      baseline,
      joinS,
      joinCpuMs,
      bonded,
      bondS,
      idleHeld,
      idle,
      fleetLoadCores,
      memHeld: rssHeld - rss0,
      mem: rss1 - rss0,
    };
  };
  const trials = smoke ? 1 : 3;
  const ratios: number[] = [];
  const runs: Awaited<ReturnType<typeof runFleet>>[] = [];
  const cpuRatios: number[] = [];
  // The plain server holding the same fleet, once a trial: its memory varies run to run as much
  // as havn's does.
  const runPlain = async () => {
    const plain = await startRole("plain-ws", {});
    const plainPid = lastPid();
    const prss0 = rssMiB(plainPid);
    const p0 = cpuSeconds(plainPid);
    const plainFleet = await startFleet(plain, size, perProcess);
    const joinCpuMs = ((cpuSeconds(plainPid) - p0) * 1000) / size;
    const { cores } = await idleWindow(plainPid, plainFleet, windowMs);
    const mem = rssMiB(plainPid) - prss0;
    stopAll();
    return { joinCpuMs, cores, mem };
  };
  const plains: Awaited<ReturnType<typeof runPlain>>[] = [];
  for (let t = 0; t < trials; t++) {
    let none: Awaited<ReturnType<typeof runNone>>;
    let withFleet: Awaited<ReturnType<typeof runFleet>>;
    if (t % 2 === 0) {
      none = await runNone();
      withFleet = await runFleet();
    } else {
      withFleet = await runFleet();
      none = await runNone();
    }
    plains.push(await runPlain());
    runs.push(withFleet);
    ratios.push(withFleet.perSecond / none.perSecond);
    cpuRatios.push(withFleet.cpuPerJobUs / none.cpuPerJobUs);
    console.log(
      `    trial ${t + 1}: real jobs/s ${fmt(none.perSecond, 0)} with no fleet, ${fmt(withFleet.perSecond, 0)} with it (${fmt(withFleet.perSecond / none.perSecond, 2)}×); coordinator CPU a job ${fmt(none.cpuPerJobUs, 0)} / ${fmt(withFleet.cpuPerJobUs, 0)} µs; ${withFleet.bonded} fleet nodes bonded in ${fmt(withFleet.bondS, 1)} s; memory for the fleet ${fmt(withFleet.memHeld, 0)} / ${fmt(plains.at(-1)!.mem, 0)} MiB (havn / plain ws)`,
    );
  }
  const mid = (xs: number[]) => median(xs);
  const baseline = { cores: mid(runs.map((r) => r.baseline.cores)) };
  const idle = { cores: mid(runs.map((r) => r.idle.cores)), fleetCores: mid(runs.map((r) => r.idle.fleetCores)) };
  const idleHeld = { cores: mid(runs.map((r) => r.idleHeld.cores)) };
  const memHeld = mid(runs.map((r) => r.memHeld));
  const joinS = mid(runs.map((r) => r.joinS));
  const joinCpuMs = mid(runs.map((r) => r.joinCpuMs));
  const memBonded = mid(runs.map((r) => r.mem));

  const plainJoinCpuMs = mid(plains.map((p) => p.joinCpuMs));
  const plainIdle = { cores: mid(plains.map((p) => p.cores)) };
  const plainMem = mid(plains.map((p) => p.mem));
  const fleetLoadCores = mid(runs.map((r) => r.fleetLoadCores));

  const line = (what: string, value: string) => console.log(`    ${what.padEnd(50)}${value}`);
  const fleetCores = Math.max(0, idle.cores - baseline.cores);
  const heldCores = Math.max(0, idleHeld.cores - baseline.cores);
  const times = (a: number, b: number, digits = 3) =>
    `${fmt(a, digits)} / ${fmt(b, digits)} (${fmt(a / Math.max(b, digits === 0 ? 1 : 0.001), 1)}×)`;
  line("real jobs/s with the fleet / without, median:", `${fmt(median(ratios), 2)}× (${spread(ratios, 2)})`);
  line("coordinator CPU a job, with the fleet / without:", `${fmt(median(cpuRatios), 2)}× (${spread(cpuRatios, 2)})`);
  line(
    "joining: wall, CPU per join (havn / plain ws):",
    `${fmt(joinS, 1)} s, ${fmt(joinCpuMs, 2)} / ${fmt(plainJoinCpuMs, 2)} ms`,
  );
  line("bonding the fleet (admin, 8 at a time):", `${fmt(mid(runs.map((r) => r.bondS)), 1)} s`);
  line(
    "idle CPU for the fleet, cores (havn / plain ws):",
    `${times(fleetCores, plainIdle.cores)} routable, ${fmt(heldCores, 3)} before bonding; havn's own idle ${fmt(baseline.cores, 3)}`,
  );
  line(
    `fleet processes' CPU, cores (nice ${fleetNice}):`,
    `${fmt(idle.fleetCores, 3)} idle, ${fmt(fleetLoadCores, 3)} during the load`,
  );
  line(
    "memory for the fleet, MiB (havn / plain ws):",
    `${times(memHeld, plainMem, 0)}; ${fmt(memBonded, 0)} after bonding it`,
  );
  return {
    ratio: median(ratios),
    cpuRatio: fleetCores / Math.max(plainIdle.cores, 0.001),
    memRatio: memHeld / Math.max(plainMem, 1),
  };
}

// ---------------------------------------------------------------------------------------------

async function main() {
  console.log(
    `havn benchmarks — node ${process.version}, ${availableParallelism()} cores, ${new Date().toISOString()}`,
  );
  if (smoke) console.log("SMOKE RUN: a few requests per part, to check the bench works; the figures mean nothing");
  console.log(`core speed: one Ed25519 verification takes ${coreSpeedUs().toFixed(0)} µs (less is faster)`);
  console.log("havn runs as the CLI runs it:");
  for (const line of cliSettings) console.log(`    ${line}`);

  const startupResults = wants("startup") ? await startup() : undefined;

  const overheadRows = [];
  const chosen = profiles.filter((p) => (wants("overhead") || wants(p.name)) && (!smoke || p.name === "instant"));
  if (chosen.length > 0) {
    console.log(
      "\n(b) Overhead: a chat completion straight to the backend, through two bare proxy hops, and through havn",
    );
    console.log("    each in its own process; latencies in ms, median of trials (min–max)");
    for (const profile of chosen) overheadRows.push(...(await overhead(profile)));
  }

  const stores = (["sqlite", "postgres"] as const).filter(
    (s) => (wants("throughput") || wants(s)) && (!smoke || s === "sqlite"),
  );
  const rates = stores.length > 0 ? await throughput(stores) : undefined;
  const routing = wants("routing") ? await routingBench(smoke) : undefined;
  const fleet = wants("fleet") ? await fleetBench() : undefined;
  // Opt-in: six more throughput runs.
  if (only.has("logging")) await loggingCost();

  console.log("\nTargets (reported, not gated):");
  const line = (what: string, value: string) => console.log(`    ${what.padEnd(58)}${value}`);
  if (startupResults) {
    line("havn --version ≤ 300 ms:", `${fmt(startupResults["havn --version"]!.median, 0)} ms`);
    line("havn --help ≤ 300 ms:", `${fmt(startupResults["havn --help"]!.median, 0)} ms`);
    line(
      "havn ask adds ≤ 300 ms over node -e 0:",
      `${fmt(startupResults["havn ask (8 tokens)"]!.overBase, 0)} ms (the request included)`,
    );
    line(
      "npx havn --version ≤ 300 ms:",
      `${fmt(startupResults["npx havn --version"]!.median, 0)} ms, of which npx itself ${fmt(startupResults["npx node -e 0"]!.median, 0)} ms`,
    );
  }
  for (const r of overheadRows.filter((r) => r.concurrency === 64))
    line(
      `overhead at concurrency 64 (${r.profile}) p50 ≤ 3 ms, p99 ≤ 15 ms:`,
      `p50 ${fmt(median(r.havnOverP50))} ms, p99 ${fmt(median(r.havnOverP99))} ms`,
    );
  if (routing) line("routing decision p99 ≤ 1 ms with 10,000 online nodes:", `${fmt(routing.p99At10k / 1000, 3)} ms`);
  if (fleet) {
    line("10,000 idle nodes: real-job throughput ≥ 90 % of none:", `${fmt(fleet.ratio * 100, 0)} %`);
    line(
      "10,000 idle nodes: CPU, memory ≤ 2× a plain ws server:",
      `${fmt(fleet.cpuRatio, 1)}×, ${fmt(fleet.memRatio, 1)}×`,
    );
  }
  if (rates?.has("havn SQLite"))
    line("SQLite ≥ 2,000 jobs/s (median):", `${fmt(median(rates.get("havn SQLite")!), 0)} jobs/s`);
  if (rates?.has("havn PostgreSQL"))
    line("PostgreSQL ≥ 1,000 jobs/s (median):", `${fmt(median(rates.get("havn PostgreSQL")!), 0)} jobs/s`);
  for (const store of ["havn SQLite", "havn PostgreSQL"]) {
    const paid = rates?.get(store);
    const free = rates?.get(`${store}, free`);
    if (paid && free)
      line(
        `${store.slice(5)}: paid ≥ 80 % of free (median of trials):`,
        `${fmt(100 * median(paid.map((p, i) => p / free[i]!)), 0)} %`,
      );
  }
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => {
    stopAll();
    rmSync(scratch, { recursive: true, force: true });
  });
