import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";

/** A process a test started, with what it printed so far. */
export interface Watched {
  readonly child: ChildProcess;
  readonly out: { stdout: string; stderr: string };
  /** Its exit code once it exits. */
  readonly exited: Promise<number | null>;
  /** The first match of `pattern` in its stdout; rejects if it exits first or after `timeoutMs`. */
  printed(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
}

/**
 * Starts a command the way a user would, collecting its output; `input`, when given, is written to
 * its stdin and closed. Every process started is pushed onto `started`, for the test to stop.
 */
export function watch(
  started: ChildProcess[],
  command: string,
  args: string[],
  options: Omit<SpawnOptions, "stdio"> & { input?: string | undefined } = {},
): Watched {
  const { input, ...spawnOptions } = options;
  const child = spawn(command, args, {
    ...spawnOptions,
    stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
  started.push(child);
  if (input !== undefined) child.stdin!.end(input);
  const out = { stdout: "", stderr: "" };
  child.stdout!.on("data", (d: Buffer) => (out.stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const printed = (pattern: RegExp, timeoutMs = 60_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${pattern} in: ${out.stdout}${out.stderr}`)), timeoutMs);
      const check = () => {
        const m = pattern.exec(out.stdout);
        if (m) {
          clearTimeout(timer);
          resolve(m);
        }
      };
      child.stdout!.on("data", check);
      check();
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`exited before ${pattern}: ${out.stdout}${out.stderr}`));
      });
    });
  return { child, out, exited, printed };
}
