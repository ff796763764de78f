import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir, hostname } from "node:os";
import { dirname, join } from "node:path";
import { HavnClient } from "@havn/sdk";

/** What `havn login` keeps for one coordinator. */
interface Saved {
  readonly api_key?: string;
  readonly refresh_token?: string;
  readonly access_token?: string;
  /** Epoch ms after which the access token is renewed first. */
  readonly access_expires_at?: number;
  readonly account?: string;
}

/** `$HAVN_CONFIG_HOME`, else `$XDG_CONFIG_HOME/havn`, else `~/.config/havn`: `credentials.json`, mode 0600. */
export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir =
    env.HAVN_CONFIG_HOME ||
    (env.XDG_CONFIG_HOME ? join(env.XDG_CONFIG_HOME, "havn") : join(homedir(), ".config", "havn"));
  return join(dir, "credentials.json");
}

const keyOf = (coordinator: string) => coordinator.replace(/\/+$/, "");

function readJson<T>(path: string): Record<string, T> {
  if (!existsSync(path)) return {};
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Record<string, T>;
  } catch {
    return {};
  }
}

/** Writes a file readable by its owner only, replacing it whole (never half-written). */
function writePrivateJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

const load = () => readJson<Saved>(credentialsPath());
const store = (all: Record<string, Saved>) => writePrivateJson(credentialsPath(), all);

export function saveCredentials(coordinator: string, saved: Saved): void {
  store({ ...load(), [keyOf(coordinator)]: saved });
}

export function forgetCredentials(coordinator: string): Saved | undefined {
  const all = load();
  const saved = all[keyOf(coordinator)];
  delete all[keyOf(coordinator)];
  store(all);
  return saved;
}

export function savedCredentials(coordinator: string): Saved | undefined {
  return load()[keyOf(coordinator)];
}

/**
 * The bearer credential a client command sends: `--api-key` or `HAVN_API_KEY`, else what `havn
 * login` saved for this coordinator — an API key, or an access token renewed with its refresh
 * token when it is about to expire. Undefined: none (a dev-mode coordinator needs none).
 */
export async function bearerFor(coordinator: string, explicit: string | undefined): Promise<string | undefined> {
  if (explicit) return explicit;
  const saved = savedCredentials(coordinator);
  if (!saved) return undefined;
  if (saved.api_key) return saved.api_key;
  if (saved.access_token && (saved.access_expires_at ?? 0) > Date.now() + 30_000) return saved.access_token;
  if (!saved.refresh_token) return undefined;
  let session;
  try {
    session = await new HavnClient({ baseUrl: coordinator }).refresh(saved.refresh_token);
  } catch (err) {
    // Another havn process refreshed this login a moment ago (a refresh token is single-use): its
    // new tokens are in the file, or about to be.
    const e = err as { code?: unknown; details?: { reason?: unknown } };
    if (e.code !== "AUTH_REFRESH_INVALID" || e.details?.reason !== "raced") throw err;
    for (let waited = 0; waited <= 3_000; waited += 100) {
      const now = savedCredentials(coordinator);
      if (now?.access_token && now.refresh_token !== saved.refresh_token) return now.access_token;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw err;
  }
  saveCredentials(coordinator, {
    refresh_token: session.refresh_token,
    access_token: session.access_token,
    access_expires_at: Date.now() + session.expires_in * 1000,
    ...(saved.account ? { account: saved.account } : {}),
  });
  return session.access_token;
}

export interface ClientOptions {
  readonly coordinator: string;
  readonly apiKey?: string | undefined;
}

/** A client that sends the credential client commands use (see `bearerFor`). */
export async function authedClient(o: ClientOptions): Promise<HavnClient> {
  return new HavnClient({ baseUrl: o.coordinator, apiKey: await bearerFor(o.coordinator, o.apiKey) });
}

/**
 * The API key a node joins with when its operator gave none: one kept in the node's data dir
 * (`node-api-key.json`, mode 0600) for this coordinator; else an API key `havn login` saved; else,
 * with a saved login, a new `node`-scoped key made with it and kept, so restarts reuse it (a
 * login's access token expires within the hour and is no node credential). Undefined: nothing
 * saved for this coordinator. `made` is the new key's id when one was made.
 */
export async function nodeKeyFromLogin(
  coordinator: string,
  dataDir: string,
): Promise<{ key: string; made?: string } | undefined> {
  const file = join(dataDir, "node-api-key.json");
  const kept = readJson<string>(file);
  const mine = kept[keyOf(coordinator)];
  if (mine) return { key: mine };
  const saved = savedCredentials(coordinator);
  if (!saved) return undefined;
  if (saved.api_key) return { key: saved.api_key };
  const bearer = await bearerFor(coordinator, undefined);
  if (!bearer) return undefined;
  const made = await new HavnClient({ baseUrl: coordinator, apiKey: bearer }).createKey(`node on ${hostname()}`, [
    "node",
  ]);
  writePrivateJson(file, { ...kept, [keyOf(coordinator)]: made.key });
  return { key: made.key, made: made.id };
}
