import { setFlagsFromString } from "node:v8";
import { Command, Option } from "commander";
import {
  cliVersion,
  defaultCoordinatorUrl,
  defaultPort,
  logFormats,
  logLevels,
  parseInteger,
  parseNumber,
  reportError,
} from "./options.js";

// Each command's code is imported only when that command runs: `havn --version` loads commander
// and this file, not the coordinator, the database drivers or node-llama-cpp (~0.4 s alone).

/**
 * For one-shot client commands: fetch parses HTTP with llhttp compiled to WebAssembly, and V8
 * optimises that module on a background thread that the process then waits for at exit — ~100 ms
 * of every `havn ask`, for code that parses one response. Baseline compilation alone suffices.
 */
function quickExit(): void {
  setFlagsFromString("--liftoff-only");
}

export function program(): Command {
  const cli = new Command("havn")
    .description("havn: independently owned GPUs as one paid, verifiable AI service")
    .version(cliVersion)
    .showHelpAfterError("(add --help for usage)");

  const coordinatorOption = () =>
    new Option("--coordinator <url>", "coordinator base URL (env HAVN_COORDINATOR)").default(defaultCoordinatorUrl());
  const port = (d: number) =>
    new Option("--port <n>", "port to listen on (0 picks a free one)").default(d).argParser(parseInteger(0, 65535));
  const host = () =>
    new Option("--host <host>", "address to listen on (0.0.0.0 for other machines)").default("127.0.0.1");
  const dataDir = (role: string) =>
    new Option("--data-dir <dir>", `where this ${role}'s state lives (default ~/.havn/${role}; env HAVN_HOME)`);
  const databaseUrl = () =>
    new Option(
      "--database-url <url>",
      "PostgreSQL URL; one with a password belongs in DATABASE_URL or DATABASE_URL_FILE, not argv (ps shows argv); default SQLite in the data dir",
    ).env("DATABASE_URL");
  /** A credential for the coordinator: a flag, HAVN_API_KEY, or what `havn login` saved. */
  const apiKey = () =>
    new Option("--api-key <key>", "API key for the coordinator (default: what `havn login` saved)").env("HAVN_API_KEY");
  /** Every command logs the same way: JSON lines on stderr, or `pretty` for people. */
  const logging = (command: Command) =>
    command
      .addOption(new Option("--log-level <level>", "log level").choices(logLevels).default("info"))
      .addOption(
        new Option("--log-format <format>", "json (one object per line, on stderr) or pretty")
          .choices(logFormats)
          .default("json"),
      );

  logging(
    cli
      .command("up")
      .description("run a coordinator and one built-in node in this process, on embedded defaults")
      .addOption(port(defaultPort))
      .addOption(host())
      .addOption(dataDir("up"))
      .addOption(databaseUrl())
      .option("--no-node", "start without the built-in node")
      .option("--insecure", "dev mode beyond this machine: anyone who reaches it acts as the dev account", false)
      .option("--free", "a free network: no prices, no escrow, no ledger", false),
  ).action(async (o) => (await import("./commands/up.js")).up(o));

  logging(
    cli
      .command("coordinator")
      .description(
        "run a coordinator (production: credentials required; secrets from HAVN_JWT_SECRET, HAVN_JOIN_TOKEN, HAVN_ADMIN_EMAIL and HAVN_ADMIN_PASSWORD, each also as *_FILE)",
      )
      .addOption(port(defaultPort))
      .addOption(host())
      .addOption(dataDir("coordinator"))
      .addOption(databaseUrl())
      .addOption(
        new Option("--mode <mode>", "production, or dev (no credentials)")
          .choices(["production", "dev"])
          .default("production"),
      )
      .addOption(new Option("--registration <how>", "who may register").choices(["open", "invite"]).default("open"))
      .option("--cors-origin <origin...>", "browser origins that may call the API (CORS)")
      .option(
        "--public-url <url>",
        "the address clients reach this coordinator at (wallet sign-in names its host); default: the loopback address it listens on",
      )
      .addOption(
        new Option(
          "--node-admission <who>",
          "which nodes may join: any account's node key, or only the join token and admins' keys",
        )
          .choices(["open", "token"])
          .default("open"),
      )
      .option(
        "--trust-proxy <addresses>",
        "behind a reverse proxy: its addresses (comma-separated, CIDR allowed), whose X-Forwarded-For names the client",
      )
      .option(
        "--rate-limit <n>",
        "requests per minute per credential (0: none); anonymous callers get 120 per address",
        parseInteger(0, 10_000_000),
        1_200,
      )
      .option(
        "--retention-days <n>",
        "days a job's prompt and output are kept after it ends (0: until its owner deletes them)",
        parseNumber(0, 36_500),
        30,
      )
      .addOption(
        new Option(
          "--catalog <which>",
          "model names nodes may serve: any of the right syntax (open, for a network with one operator), or only the manifest's and those governance admitted (curated); default: curated, open in dev mode",
        ).choices(["open", "curated"]),
      )
      .option("--insecure", "with --mode dev: listen beyond this machine anyway", false)
      .option("--free", "a free network: no prices, no escrow, no ledger", false),
  ).action(async (o) => (await import("./commands/coordinator.js")).coordinator(o));

  logging(
    cli
      .command("node")
      .description("run a node that takes jobs from a coordinator")
      .addOption(coordinatorOption())
      .addOption(new Option("--backend <kind>", "inference backend").choices(["builtin", "openai"]).default("builtin"))
      .option("--backend-url <url>", "OpenAI-compatible server, with /v1: e.g. http://127.0.0.1:11434/v1 (Ollama)")
      .addOption(
        new Option("--backend-api-key <key>", "API key of the OpenAI-compatible server").env("HAVN_BACKEND_API_KEY"),
      )
      .addOption(
        new Option(
          "--api-key <key>",
          "your node-scoped API key, to join under your account (default: one made once with what `havn login` saved)",
        ).env("HAVN_API_KEY"),
      )
      .addOption(
        new Option("--join-token <token>", "the network's join token (also HAVN_JOIN_TOKEN_FILE)").env(
          "HAVN_JOIN_TOKEN",
        ),
      )
      .option("--model <name>", "model to serve (openai: one the server lists; builtin: name for --model-file)")
      .option("--model-file <path>", "builtin: a GGUF file to serve instead of the generated tiny model")
      .option("--name <name>", "this node's name, bound to its key on first registration")
      .option("--slots <n>", "jobs to run at once", parseInteger(1, 1024))
      .option("--threads <n>", "builtin: CPU threads per job", parseInteger(1, 256))
      .addOption(dataDir("node"))
      .option("--metrics-port <n>", "serve this node's Prometheus /metrics on this port", parseInteger(0, 65535))
      .option("--metrics-host <host>", "address for --metrics-port", "127.0.0.1"),
  ).action(async (o) => (await import("./commands/node.js")).node(o));

  logging(
    cli
      .command("ask")
      .description("ask the network; streams the answer and ends with `job: <id>`")
      .argument("<prompt>", "what to ask")
      .addOption(coordinatorOption())
      .option("--model <name>", "model, or auto", "auto")
      .option("--max-tokens <n>", "longest answer in tokens", parseInteger(1, 8192), 128)
      .option("--seed <n>", "sampling seed (same seed, same answer)", parseInteger(0, 0xffffffff))
      .option("--temperature <t>", "0 is greedy", parseNumber(0, 2), 0.7)
      .option("--workflow <ref>", "run a published workflow (id, name or name@version) around the prompt")
      .addOption(apiKey()),
  ).action(async (prompt: string, o, command: Command) => {
    quickExit();
    // With a workflow, its parameters stand where the user set none.
    const set = (name: string) => !o.workflow || command.getOptionValueSource(name) !== "default";
    await (
      await import("./commands/client.js")
    ).ask(prompt, {
      ...o,
      maxTokens: set("maxTokens") ? o.maxTokens : undefined,
      temperature: set("temperature") ? o.temperature : undefined,
    });
  });

  logging(
    cli
      .command("receipt")
      .description("print a job's receipt and verify it (exit 0 only if every check passes)")
      .argument("<job-id>", "the job id (the completion's id)")
      .addOption(coordinatorOption())
      .option("--coordinator-key <key>", "expect this coordinator key instead of the one the coordinator publishes")
      .option("--json", "print JSON", false)
      .addOption(apiKey()),
  ).action(async (jobId: string, o) => {
    quickExit();
    await (await import("./commands/client.js")).receipt(jobId, o);
  });

  logging(
    cli
      .command("login")
      .description("sign in to a coordinator; client commands then use the saved credential (mode 0600)")
      .addOption(coordinatorOption())
      .option("--email <email>", "sign in with an email and a password (piped with --password-stdin, or typed)")
      .option("--password-stdin", "read the password from standard input", false)
      .option("--register", "create the account first", false)
      .option("--api-key-stdin", "sign in with an API key read from standard input (or set HAVN_API_KEY)", false)
      .addOption(apiKey().hideHelp()),
  ).action(async (o) => {
    quickExit();
    await (await import("./commands/account.js")).login(o);
  });

  logging(
    cli.command("logout").description("forget the saved credential for a coordinator").addOption(coordinatorOption()),
  ).action(async (o) => {
    quickExit();
    await (await import("./commands/account.js")).logout(o);
  });

  logging(
    cli
      .command("whoami")
      .description("the account and scopes your credential acts as")
      .addOption(coordinatorOption())
      .addOption(apiKey())
      .option("--json", "print JSON", false),
  ).action(async (o) => {
    quickExit();
    await (await import("./commands/account.js")).whoami(o);
  });

  logging(
    cli
      .command("balance")
      .description("what your account holds, in HAI")
      .option("--history", "and its ledger transactions, newest first", false)
      .addOption(coordinatorOption())
      .addOption(apiKey())
      .option("--json", "print JSON (exact µHAI)", false),
  ).action(async (o) => {
    quickExit();
    await (await import("./commands/account.js")).balance(o);
  });
  logging(
    cli
      .command("faucet")
      .description("dev mode only: free $HAI for your account")
      .addOption(coordinatorOption())
      .addOption(apiKey())
      .option("--json", "print JSON", false),
  ).action(async (o) => {
    quickExit();
    await (await import("./commands/account.js")).faucet(o);
  });

  const keys = cli.command("keys").description("your API keys (havn_sk_…)");
  logging(
    keys
      .command("create")
      .description("create an API key; it is printed once, on stdout")
      .requiredOption("--name <name>", "what the key is for")
      .option("--scopes <list>", "comma-separated: jobs, node, metrics, admin", "jobs")
      .addOption(coordinatorOption())
      .addOption(apiKey()),
  ).action(async (o) => {
    quickExit();
    await (await import("./commands/account.js")).keysCreate(o);
  });
  logging(
    keys
      .command("list")
      .description("list your API keys")
      .addOption(coordinatorOption())
      .addOption(apiKey())
      .option("--json", "print JSON", false),
  ).action(async (o) => {
    quickExit();
    await (await import("./commands/account.js")).keysList(o);
  });
  logging(
    keys
      .command("revoke")
      .description("revoke an API key: it stops working at once")
      .argument("<id>", "the key's id (key-…)")
      .addOption(coordinatorOption())
      .addOption(apiKey()),
  ).action(async (id: string, o) => {
    quickExit();
    await (await import("./commands/account.js")).keysRevoke(id, o);
  });

  logging(
    cli
      .command("publish")
      .description("publish a workflow version from its manifest (model, template, royalty split, dependencies)")
      .argument("<file>", "the workflow manifest, JSON")
      .addOption(coordinatorOption())
      .addOption(apiKey())
      .option("--json", "print JSON", false),
  ).action(async (file: string, o) => {
    quickExit();
    await (await import("./commands/workflows.js")).publish(file, o);
  });
  logging(
    cli
      .command("workflows")
      .description("published workflows, newest first")
      .option("--mine", "only yours", false)
      .addOption(coordinatorOption())
      .addOption(apiKey())
      .option("--json", "print JSON", false),
  ).action(async (o) => {
    quickExit();
    await (await import("./commands/workflows.js")).workflows(o);
  });
  logging(
    cli
      .command("earnings")
      .description("what a workflow earned its creator, across how many runs")
      .argument("<workflow>", "its id, name or name@version")
      .addOption(coordinatorOption())
      .addOption(apiKey())
      .option("--json", "print JSON", false),
  ).action(async (ref: string, o) => {
    quickExit();
    await (await import("./commands/workflows.js")).earnings(ref, o);
  });

  logging(
    cli
      .command("reputation")
      .description("nodes' reputation, best first; with a node, its score and every change with its cause")
      .argument("[node]", "a node's key or name")
      .addOption(coordinatorOption())
      .addOption(apiKey())
      .option("--json", "print JSON", false),
  ).action(async (node: string | undefined, o) => {
    quickExit();
    await (await import("./commands/reputation.js")).reputation(node, o);
  });

  const stakeTarget = (c: Command) =>
    c
      .option("--node <node>", "a node you operate: its key or name")
      .option("--validator", "yourself, as a validator")
      .option("--idempotency-key <key>", "a retry with the same key moves stake once");
  logging(
    stakeTarget(
      cli
        .command("stake")
        .description("bond HAI to a node you operate (or yourself as a validator); without an amount, your stakes")
        .argument("[amount]", "HAI, e.g. 2000"),
    )
      .addOption(coordinatorOption())
      .addOption(apiKey())
      .option("--json", "print JSON (exact µHAI)", false),
  ).action(async (amount: string | undefined, o) => {
    quickExit();
    await (await import("./commands/stake.js")).stake(amount, o);
  });
  logging(
    stakeTarget(
      cli
        .command("unstake")
        .description("start unbonding HAI: it leaves the bond now and comes back after the unbonding delay")
        .argument("<amount>", "HAI, e.g. 500"),
    )
      .addOption(coordinatorOption())
      .addOption(apiKey())
      .option("--json", "print JSON (exact µHAI)", false),
  ).action(async (amount: string, o) => {
    quickExit();
    await (await import("./commands/stake.js")).unstake(amount, o);
  });
  logging(
    cli
      .command("pool")
      .description("the monthly pool: this period, what a snapshot now would pay each node, past distributions")
      .addOption(coordinatorOption())
      .addOption(apiKey())
      .option("--json", "print JSON (exact µHAI)", false),
  ).action(async (o) => {
    quickExit();
    await (await import("./commands/stake.js")).pool(o);
  });
  logging(
    cli
      .command("params")
      .description("every governance parameter: value, unit, who set it")
      .addOption(coordinatorOption())
      .addOption(apiKey())
      .option("--json", "print JSON (with bounds and reasons)", false),
  ).action(async (o) => {
    quickExit();
    await (await import("./commands/stake.js")).params(o);
  });
  logging(
    cli
      .command("propose")
      .description(
        "propose a change, voted on with bonded stake: set name=value…, pause-node|resume-node <node>, pause-model|resume-model|flag-model|unflag-model|admit-model <model>, flag-workflow|unflag-workflow <workflow>",
      )
      .argument("<action>", "set, pause-node, resume-node, pause-model, …")
      .argument("[args...]", "name=value changes, or the node, model or workflow")
      .requiredOption("--reason <why>", "kept with the proposal")
      .option("--admin", "act at once as an admin (dev mode; emergencies in production)")
      .option("--idempotency-key <key>", "a retry with the same key proposes once")
      .addOption(coordinatorOption())
      .addOption(apiKey())
      .option("--json", "print JSON", false),
  ).action(async (action: string, args: string[], o) => {
    quickExit();
    await (await import("./commands/stake.js")).propose(action, args, o);
  });
  logging(
    cli
      .command("proposals")
      .description("governance proposals, newest first; with an id, one with its votes")
      .argument("[id]", "a proposal's id")
      .addOption(coordinatorOption())
      .addOption(apiKey())
      .option("--json", "print JSON", false),
  ).action(async (id: string | undefined, o) => {
    quickExit();
    await (await import("./commands/stake.js")).proposals(id, o);
  });
  logging(
    cli
      .command("vote")
      .description("vote on a proposal, weighted by your bonded stake (a vote is final)")
      .argument("<proposal>", "its id")
      .argument("<choice>", "yes, no or abstain")
      .addOption(coordinatorOption())
      .addOption(apiKey())
      .option("--json", "print JSON", false),
  ).action(async (id: string, choice: string, o) => {
    quickExit();
    await (await import("./commands/stake.js")).vote(id, choice, o);
  });

  const logCmd = cli.command("log").description("the execution log: check it");
  logging(
    logCmd
      .command("verify")
      .description("check a range of the execution log offline (exit 0 only if every check passes)")
      .option("--from <n>", "the first position", parseInteger(1, Number.MAX_SAFE_INTEGER))
      .option("--to <n>", "the last position (default: the signed head)", parseInteger(1, Number.MAX_SAFE_INTEGER))
      .option("--job <id>", "also check this job's inclusion proof, inside the range")
      .option("--save <file>", "keep what was fetched, to check again with --file")
      .option("--file <file>", "check a range saved with --save, with no network")
      .option(
        "--coordinator-key <key>",
        "trust only keys that are, or chain by certificates to, this coordinator key (repeat for each replica)",
        (key: string, keys: string[]) => [...keys, key],
        [] as string[],
      )
      .addOption(coordinatorOption())
      .addOption(apiKey())
      .option("--json", "print JSON", false),
  ).action(async (o) => {
    quickExit();
    await (await import("./commands/log.js")).logVerify(o);
  });

  const admin = cli.command("admin").description("administer a coordinator");
  logging(
    admin
      .command("create")
      .description("create an admin account, on the coordinator's host (writes its database)")
      .requiredOption("--email <email>", "the admin's email")
      .option("--password-stdin", "read the password from standard input (or HAVN_PASSWORD[_FILE], or typed)", false)
      .addOption(dataDir("coordinator"))
      .addOption(databaseUrl()),
  ).action(async (o) => (await import("./commands/account.js")).adminCreate(o));
  logging(
    admin
      .command("rotate-key")
      .description("give the coordinator a new signing key, on its host (takes effect at its next start)")
      .addOption(dataDir("coordinator")),
  ).action(async (o) => (await import("./commands/account.js")).adminRotateKey(o));
  logging(
    admin
      .command("invite")
      .description("an invitation to register (shown once), for registration by invite")
      .option("--days <n>", "how long it is valid", parseInteger(1, 30), 7)
      .addOption(coordinatorOption())
      .addOption(apiKey()),
  ).action(async (o) => {
    quickExit();
    await (await import("./commands/account.js")).adminInvite(o);
  });

  for (const [kind, description] of [
    ["credit", "add $HAI to an account or wallet (admins; standing in for deposits)"],
    ["debit", "take $HAI from an account or wallet into the treasury (admins)"],
  ] as const)
    logging(
      admin
        .command(kind)
        .description(description)
        .requiredOption("--amount <hai>", "in HAI, e.g. 12.5")
        .requiredOption("--reason <text>", "kept with the transaction (the audit trail)")
        .option("--account <id>", "a havn account (acc-…)")
        .option("--email <email>", "a havn account, by its email")
        .option("--wallet <address>", "an EVM wallet (0x…)")
        .addOption(coordinatorOption())
        .addOption(apiKey())
        .option("--json", "print JSON", false),
    ).action(async (o) => {
      quickExit();
      await (await import("./commands/account.js")).adminAdjust(kind, o);
    });

  logging(
    admin
      .command("settlement")
      .description("hold a completed job's settlement, or end a hold: settle it, or refund its payer (admins)")
      .argument("<job>", "the job id")
      .argument("<action>", "hold | settle | refund")
      .requiredOption("--reason <text>", "logged with the change (the audit trail)")
      .addOption(coordinatorOption())
      .addOption(apiKey())
      .option("--json", "print JSON", false),
  ).action(async (job: string, action: string, o) => {
    quickExit();
    await (await import("./commands/account.js")).adminSettlement(job, action, o);
  });

  logging(
    cli
      .command("serve-model")
      .description("serve the built-in engine as an OpenAI-compatible HTTP server")
      .addOption(port(8080))
      .addOption(host())
      .option("--model-file <path>", "a GGUF file instead of the generated tiny model")
      .option("--model <name>", "the name to serve it under")
      .option("--slots <n>", "jobs to run at once", parseInteger(1, 64))
      .addOption(dataDir("serve-model")),
  ).action(async (o) => (await import("./commands/serve-model.js")).serveModel(o));

  return cli;
}

/**
 * Runs the CLI. An error that reaches here ends the process with exit code 1 once reported: a
 * command that failed to start (port in use, wrong backend URL) may hold open handles — a
 * database, a loaded model — that would otherwise keep a process that cannot work alive.
 */
export async function run(argv: string[]): Promise<void> {
  // `havn params | head`: the reader left; what is left to print has no one to read it.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(0);
    throw err;
  });
  try {
    await program().parseAsync(argv);
  } catch (err) {
    reportError(err);
    process.exit(1);
  }
}
