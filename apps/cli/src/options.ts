import { InvalidArgumentError } from "commander";

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

/** Prints an error the way the catalog describes it and sets a failing exit code. */
export function reportError(err: unknown): void {
  const e = err as { code?: string; message?: string };
  process.stderr.write(`error${e.code ? ` ${e.code}` : ""}: ${e.message ?? String(err)}\n`);
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
