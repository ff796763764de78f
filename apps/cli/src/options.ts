import { readFileSync } from "node:fs";
import { InvalidArgumentError } from "commander";

/** The CLI's version, from its package.json (`../package.json` from both src/ and dist/). */
export const cliVersion: string = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;

export const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof logLevels)[number];
export const logFormats = ["json", "pretty"] as const;
export type LogFormat = (typeof logFormats)[number];

/** What every command takes for its logs. */
export interface LogOptions {
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
}

/** The coordinator URL every client command defaults to. */
export const defaultPort = 8787;
export function defaultCoordinatorUrl(): string {
  return process.env.HAVN_COORDINATOR ?? `http://127.0.0.1:${defaultPort}`;
}

export function parseInteger(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

export function parseNumber(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max)
      throw new InvalidArgumentError(`expected a number from ${min} to ${max}`);
    return n;
  };
}

/**
 * Prints an error on one line — `error CODE: what happened (Context: value; …)` — and sets a
 * failing exit code. Errors meant for people carry their fix in the message.
 */
export function reportError(err: unknown): void {
  const e = err as { code?: unknown; message?: string; shortMessage?: string; context?: Record<string, unknown> };
  const code = typeof e.code === "string" && /^[A-Z][A-Z0-9_]+$/.test(e.code) ? ` ${e.code}` : "";
  const context = e.context && Object.keys(e.context).length > 0 ? e.context : undefined;
  const message = (context ? e.shortMessage : undefined) ?? e.message ?? String(err);
  const details = context
    ? ` (${Object.entries(context)
        .map(([k, v]) => `${k}: ${String(v)}`)
        .join("; ")})`
    : "";
  process.stderr.write(`error${code}: ${message.replace(/\s*\n\s*/g, " ")}${details}\n`);
  process.exitCode = 1;
}

/** Stops cleanly on Ctrl-C / SIGTERM, once. */
export function onShutdown(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = () => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        reportError(err);
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", handler);
  process.once("SIGTERM", handler);
}
