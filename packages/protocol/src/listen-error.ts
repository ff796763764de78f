import { HavnError } from "./errors.js";

/**
 * Why a server could not listen, as a catalog error that names the fix (EADDRINUSE used to print
 * a stack trace and leave the process running). `flag` is the option that sets the port.
 */
export function listenError(err: unknown, host: string, port: number, flag = "--port"): HavnError {
  const code = (err as { code?: string }).code;
  const where = `${host}:${port}`;
  if (code === "EADDRINUSE")
    return new HavnError(
      "CONFIG_PORT_IN_USE",
      `${where} is already in use: stop the process that holds it, or choose another port with ${flag}.`,
      { cause: err },
    );
  if (code === "EACCES")
    return new HavnError(
      "CONFIG_LISTEN_FAILED",
      `${where} needs privileges to listen on: choose a port above 1023 with ${flag}.`,
      { cause: err },
    );
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND")
    return new HavnError(
      "CONFIG_LISTEN_FAILED",
      `${host} is not an address of this machine: use 127.0.0.1, 0.0.0.0 or one of its addresses with --host.`,
      { cause: err },
    );
  return new HavnError("CONFIG_LISTEN_FAILED", `Could not listen on ${where}: ${(err as Error).message}`, {
    cause: err,
  });
}
