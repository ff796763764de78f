import { Command, Option } from "commander";
import { startCoordinator } from "@havn/coordinator";
import { ask, receipt } from "./commands/client.js";
import { startNode } from "./commands/node.js";
import { serveModel } from "./commands/serve-model.js";
import { up } from "./commands/up.js";
import { defaultCoordinatorUrl, defaultPort, onShutdown, parseInteger, parseNumber, reportError } from "./options.js";

const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export function program(): Command {
  const cli = new Command("havn")
    .description("havn: independently owned GPUs as one paid, verifiable AI service")
    .version("0.1.0")
    .showHelpAfterError();

  const coordinatorOption = () =>
    new Option("--coordinator <url>", "coordinator base URL (env HAVN_COORDINATOR)").default(defaultCoordinatorUrl());
  const port = () =>
    new Option("--port <n>", "port to listen on").default(defaultPort).argParser(parseInteger(0, 65535));
  const host = () =>
    new Option("--host <host>", "address to listen on (0.0.0.0 for other machines)").default("127.0.0.1");
  const dataDir = () => new Option("--data-dir <dir>", "where the database, keys and models live").default("./data");
  const databaseUrl = () =>
    new Option("--database-url <url>", "PostgreSQL URL (env DATABASE_URL); default SQLite").env("DATABASE_URL");
  const logLevel = (d: string) =>
    new Option("--log-level <level>", "JSON log level on stderr").choices(logLevels).default(d);

  cli
    .command("up")
    .description("run a coordinator and one built-in node in this process, on embedded defaults")
    .addOption(port())
    .addOption(host())
    .addOption(dataDir())
    .addOption(databaseUrl())
    .option("--no-node", "start without the built-in node")
    .addOption(logLevel("warn"))
    .action((o) => up(o));

  cli
    .command("coordinator")
    .description("run a coordinator")
    .addOption(port())
    .addOption(host())
    .addOption(dataDir())
    .addOption(databaseUrl())
    .addOption(logLevel("info"))
    .action(
      async (o: {
        port: number;
        host: string;
        dataDir: string;
        databaseUrl?: string;
        logLevel: (typeof logLevels)[number];
      }) => {
        const { coordinator: app, url } = await startCoordinator({
          port: o.port,
          host: o.host,
          dataDir: o.dataDir,
          databaseUrl: o.databaseUrl,
          logLevel: o.logLevel,
        });
        process.stdout.write(`coordinator listening at ${url}\n`);
        onShutdown(() => app.close());
      },
    );

  cli
    .command("node")
    .description("run a node that takes jobs from a coordinator")
    .addOption(coordinatorOption())
    .addOption(new Option("--backend <kind>", "inference backend").choices(["builtin", "openai"]).default("builtin"))
    .option("--backend-url <url>", "OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1 (Ollama)")
    .option("--api-key <key>", "API key for the OpenAI-compatible server")
    .option("--model <name>", "model to serve (openai: one the server lists; builtin: name for --model-file)")
    .option("--model-file <path>", "builtin: a GGUF file to serve instead of the generated tiny model")
    .option("--name <name>", "this node's name, bound to its key on first registration")
    .option("--slots <n>", "jobs to run at once", parseInteger(1, 1024))
    .option("--threads <n>", "builtin: CPU threads per job", parseInteger(1, 256))
    .addOption(dataDir())
    .action(async (o) => {
      const { agent, backend } = await startNode(o);
      await agent.ready;
      process.stdout.write(`node ${agent.name} connected to ${o.coordinator}\n`);
      onShutdown(async () => {
        await agent.stop();
        await backend.close();
      });
    });

  cli
    .command("ask")
    .description("ask the network; streams the answer and ends with `job: <id>`")
    .argument("<prompt>", "what to ask")
    .addOption(coordinatorOption())
    .option("--model <name>", "model, or auto", "auto")
    .option("--max-tokens <n>", "longest answer in tokens", parseInteger(1, 8192), 128)
    .option("--seed <n>", "sampling seed (same seed, same answer)", parseInteger(0, 0xffffffff))
    .option("--temperature <t>", "0 is greedy", parseNumber(0, 2), 0.7)
    .option("--api-key <key>", "API key")
    .action((prompt: string, o) => ask(prompt, o));

  cli
    .command("receipt")
    .description("print a job's receipt and verify its signatures (exit 0 only if both verify)")
    .argument("<job-id>", "the job id (the completion's id)")
    .addOption(coordinatorOption())
    .option("--coordinator-key <key>", "expect this coordinator key instead of the one the coordinator publishes")
    .option("--json", "print JSON", false)
    .action((jobId: string, o) => receipt(jobId, o));

  cli
    .command("serve-model")
    .description("serve the built-in engine as an OpenAI-compatible HTTP server")
    .addOption(new Option("--port <n>", "port").default(8080).argParser(parseInteger(0, 65535)))
    .addOption(host())
    .option("--model-file <path>", "a GGUF file instead of the generated tiny model")
    .option("--model <name>", "the name to serve it under")
    .option("--slots <n>", "jobs to run at once", parseInteger(1, 64))
    .action((o) => serveModel(o));

  return cli;
}

export async function run(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    reportError(err);
  }
}
