import { pino, type Logger } from "pino";
import type { LogOptions } from "./options.js";

/**
 * The one log format of every havn process: pino JSON lines on stderr (stdout is for what a
 * command prints for people and scripts), or `--log-format pretty`. `name` says which part of the
 * process wrote the line (`coordinator`, `node`, `serve-model`), so `havn up`'s coordinator and
 * built-in node can share one stream.
 *
 * Lines are written asynchronously (pino flushes what is left when the process exits): a
 * synchronous write per line would put the terminal's speed on every job's path.
 */
export async function createLogger(options: LogOptions): Promise<Logger> {
  const base = {
    level: options.logLevel,
    // Credentials that could reach a log line through an error's context never do.
    redact: {
      paths: [
        "authorization",
        "apiKey",
        "api_key",
        "*.authorization",
        "*.apiKey",
        "*.api_key",
        "headers.authorization",
      ],
      censor: "[redacted]",
    },
  };
  if (options.logFormat === "pretty") {
    const { default: pretty } = await import("pino-pretty");
    return pino(base, pretty({ destination: 2, colorize: process.stderr.isTTY === true, sync: true }));
  }
  return pino(base, pino.destination({ dest: 2, sync: false }));
}
