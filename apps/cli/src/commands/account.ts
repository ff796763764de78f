import { formatHai, HavnError, parseHai } from "@havn/protocol";
import { HavnClient } from "@havn/sdk";
import {
  authedClient,
  forgetCredentials,
  saveCredentials,
  savedCredentials,
  type ClientOptions,
} from "../credentials-file.js";
import type { LogOptions } from "../options.js";
import { envSecret, readStdin } from "../secrets.js";

/** Reads a secret typed at a terminal without echoing it. */
async function promptHidden(question: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) return readStdin();
  process.stderr.write(question);
  input.setRawMode(true);
  input.resume();
  input.setEncoding("utf8");
  return new Promise((resolve, reject) => {
    let value = "";
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === "\r" || ch === "\n") {
          input.setRawMode(false);
          input.pause();
          input.off("data", onData);
          process.stderr.write("\n");
          return resolve(value);
        }
        if (ch === "\u0003") {
          input.setRawMode(false);
          return reject(new HavnError("CONFIG_INVALID", "Cancelled."));
        }
        value = ch === "\u007f" ? value.slice(0, -1) : value + ch;
      }
    };
    input.on("data", onData);
  });
}

/** A password: piped in (`--password-stdin`), typed at a prompt, or from HAVN_PASSWORD[_FILE]. */
async function password(o: { passwordStdin?: boolean }): Promise<string> {
  const fromEnv = envSecret("HAVN_PASSWORD");
  if (fromEnv) return fromEnv;
  if (o.passwordStdin) return readStdin();
  return promptHidden("password: ");
}

/**
 * `havn login`: with an email and password (a login: tokens renewed as they expire) or with an
 * API key (`--api-key-stdin`, or HAVN_API_KEY). What it saves (mode 0600) is what every client
 * command for that coordinator sends.
 */
export async function login(
  o: ClientOptions & { email?: string; passwordStdin?: boolean; apiKeyStdin?: boolean; register?: boolean },
): Promise<void> {
  if (o.apiKeyStdin || (!o.email && (o.apiKey || envSecret("HAVN_API_KEY")))) {
    const key = o.apiKeyStdin ? (await readStdin()).trim() : (o.apiKey ?? envSecret("HAVN_API_KEY"))!;
    const me = await new HavnClient({ baseUrl: o.coordinator, apiKey: key }).me();
    saveCredentials(o.coordinator, { api_key: key, account: me.account.id });
    process.stdout.write(
      `logged in to ${o.coordinator} as ${describe(me.account)} with an API key (${me.scopes.join(", ")})\n`,
    );
    return;
  }
  if (!o.email) throw new HavnError("CONFIG_INVALID", "havn login needs --email (and a password), or --api-key-stdin.");
  const client = new HavnClient({ baseUrl: o.coordinator });
  const pass = await password(o);
  const session = o.register ? await client.register(o.email, pass) : await client.login(o.email, pass);
  saveCredentials(o.coordinator, {
    refresh_token: session.refresh_token,
    access_token: session.access_token,
    access_expires_at: Date.now() + session.expires_in * 1000,
    account: session.account.id,
  });
  process.stdout.write(
    `${o.register ? "registered and logged in" : "logged in"} to ${o.coordinator} as ${describe(session.account)}\n`,
  );
}

/** `havn logout`: forgets what `havn login` saved, and ends the login on the coordinator. */
export async function logout(o: ClientOptions): Promise<void> {
  const saved = forgetCredentials(o.coordinator);
  if (saved?.refresh_token)
    await new HavnClient({ baseUrl: o.coordinator }).logout(saved.refresh_token).catch(() => {});
  process.stdout.write(saved ? `logged out of ${o.coordinator}\n` : `not logged in to ${o.coordinator}\n`);
}

const describe = (a: { id: string; email: string | null; wallet: string | null; role: string }) =>
  `${a.email ?? a.wallet ?? a.id} (${a.id}${a.role === "admin" ? ", admin" : ""})`;

/** `havn whoami`. */
export async function whoami(o: ClientOptions & { json?: boolean }): Promise<void> {
  const me = await (await authedClient(o)).me();
  if (o.json) {
    process.stdout.write(`${JSON.stringify(me, null, 2)}\n`);
    return;
  }
  const how =
    me.via === "api_key" ? `API key ${me.key_id}` : me.via === "dev" ? "dev mode (no credential needed)" : "a login";
  process.stdout.write(`${describe(me.account)} via ${how}; scopes: ${me.scopes.join(", ")}\n`);
  if (!savedCredentials(o.coordinator) && !o.apiKey && me.via !== "dev")
    process.stdout.write("(credential from HAVN_API_KEY)\n");
}

/** `havn keys create`: the key is printed once, on stdout, alone — `havn keys create > key` keeps it. */
export async function keysCreate(o: ClientOptions & { name: string; scopes: string }): Promise<void> {
  const scopes = o.scopes
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const created = await (await authedClient(o)).createKey(o.name, scopes);
  process.stderr.write(
    `created ${created.id} (${created.scopes.join(", ")}): this is the only time the key is shown\n`,
  );
  process.stdout.write(`${created.key}\n`);
}

export async function keysList(o: ClientOptions & { json?: boolean }): Promise<void> {
  const keys = await (await authedClient(o)).listKeys();
  if (o.json) {
    process.stdout.write(`${JSON.stringify(keys, null, 2)}\n`);
    return;
  }
  const when = (ms: number | null) =>
    ms === null ? "never" : new Date(ms).toISOString().slice(0, 16).replace("T", " ");
  for (const k of keys)
    process.stdout.write(
      `${k.id}  ${k.prefix}  ${k.name.padEnd(16)}  ${k.scopes.join(",").padEnd(18)}  last used ${when(k.last_used_at)}${k.revoked_at ? "  REVOKED" : ""}\n`,
    );
  if (keys.length === 0) process.stdout.write("no API keys\n");
}

export async function keysRevoke(id: string, o: ClientOptions): Promise<void> {
  await (await authedClient(o)).revokeKey(id);
  process.stdout.write(`revoked ${id}\n`);
}

/** `havn admin create`, on the coordinator's host: writes the account straight into its database. */
export async function adminCreate(
  o: LogOptions & { email: string; passwordStdin?: boolean; dataDir?: string; databaseUrl?: string },
): Promise<void> {
  const [{ createLogger }, { resolveDataDir }, { createAdmin }] = await Promise.all([
    import("../logging.js"),
    import("../data-dir.js"),
    import("@havn/coordinator"),
  ]);
  const log = await createLogger(o);
  const pass = await password(o);
  if (pass.length < 8) throw new HavnError("CONFIG_INVALID", "The password needs at least 8 characters.");
  const account = await createAdmin({
    dataDir: resolveDataDir("coordinator", o.dataDir, log),
    databaseUrl: o.databaseUrl,
    email: o.email,
    password: pass,
  });
  process.stdout.write(`created admin ${account.email} (${account.id})\n`);
}

/** `havn admin invite`: an invitation code, for registration by invite. */
export async function adminInvite(o: ClientOptions & { days: number }): Promise<void> {
  const invite = await (await authedClient(o)).createInvite(o.days * 24 * 3600);
  process.stderr.write(`valid until ${new Date(invite.expires_at).toISOString()}; shown once\n`);
  process.stdout.write(`${invite.code}\n`);
}

/** `havn balance`: what the account holds, in HAI (exact µHAI with --json). */
export async function balance(o: ClientOptions & { json?: boolean; history?: boolean }): Promise<void> {
  const client = await authedClient(o);
  const b = await client.balance();
  const history = o.history ? await client.transactions() : undefined;
  if (o.json) {
    process.stdout.write(`${JSON.stringify(history ? { ...b, transactions: history } : b, null, 2)}\n`);
    return;
  }
  const pending = BigInt(b.pending_payouts_uhai);
  process.stdout.write(
    `${b.balance} HAI (${b.account})${pending > 0n ? `; ${formatHai(pending)} HAI waiting to be paid out` : ""}\n`,
  );
  for (const t of history ?? []) {
    const mine = t.postings.filter((p) => p.account === b.account).reduce((n, p) => n + BigInt(p.amount_uhai), 0n);
    const sign = mine > 0n ? "+" : "";
    process.stdout.write(
      `${new Date(t.created_at).toISOString()}  ${t.kind.padEnd(8)} ${`${sign}${formatHai(mine)}`.padStart(14)} HAI${t.job_id ? `  ${t.job_id}` : ""}\n`,
    );
  }
}

/** `havn faucet`: dev mode's free $HAI. */
export async function faucet(o: ClientOptions & { json?: boolean }): Promise<void> {
  const client = await authedClient(o);
  const tx = await client.faucet();
  const b = await client.balance();
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ transaction: tx, balance: b }, null, 2)}\n`);
    return;
  }
  const got = tx.postings.filter((p) => p.amount_uhai[0] !== "-").reduce((n, p) => n + BigInt(p.amount_uhai), 0n);
  process.stdout.write(`+${formatHai(got)} HAI; balance ${b.balance} HAI\n`);
}

/** `havn admin credit|debit`: an admin's adjustment, with its reason on record. */
export async function adminAdjust(
  kind: "credit" | "debit",
  o: ClientOptions & {
    account?: string;
    email?: string;
    wallet?: string;
    amount: string;
    reason: string;
    json?: boolean;
  },
): Promise<void> {
  if ([o.account, o.email, o.wallet].filter((t) => t !== undefined).length !== 1)
    throw new HavnError(
      "CONFIG_INVALID",
      "Name the account (--account acc-…, or --email) or the wallet (--wallet 0x…): one of them.",
    );
  const tx = await (
    await authedClient(o)
  ).adjustBalance(
    kind,
    {
      ...(o.account ? { accountId: o.account } : {}),
      ...(o.email ? { email: o.email } : {}),
      ...(o.wallet ? { wallet: o.wallet } : {}),
    },
    parseHai(o.amount),
    o.reason,
  );
  if (o.json) {
    process.stdout.write(`${JSON.stringify(tx, null, 2)}\n`);
    return;
  }
  const to = tx.postings.find((p) => (kind === "credit" ? p.amount_uhai[0] !== "-" : p.amount_uhai[0] === "-"));
  process.stdout.write(
    `${kind === "credit" ? "credited" : "debited"} ${o.amount} HAI ${kind === "credit" ? "to" : "from"} ${to?.account} (${tx.id})\n`,
  );
}

/** `havn admin settlement <job> hold|settle|refund`: a dispute over a job's settlement, decided by an admin. */
export async function adminSettlement(
  jobId: string,
  action: string,
  o: ClientOptions & { reason: string; json?: boolean },
): Promise<void> {
  if (action !== "hold" && action !== "settle" && action !== "refund")
    throw new HavnError("CONFIG_INVALID", `The action is hold, settle or refund, not ${JSON.stringify(action)}.`);
  const job = await (await authedClient(o)).settlement(jobId, action, o.reason);
  if (o.json) {
    process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
    return;
  }
  const m = job.money;
  const charge = m?.charge_uhai ? `${formatHai(BigInt(m.charge_uhai))} HAI` : "nothing";
  process.stdout.write(`${job.id}: money ${m?.state ?? "none"} (charge ${charge})\n`);
}

/**
 * `havn admin rotate-key`: the coordinator's key file is kept aside and a new one made. At its next
 * start the coordinator adds the new key to the network's key set and retires the old one; what
 * the old key signed still verifies against it.
 */
export async function adminRotateKey(o: LogOptions & { dataDir?: string }): Promise<void> {
  const [
    { createLogger },
    { resolveDataDir },
    { certifyKey, keyId },
    { keyCertificatePath, loadOrCreateKeyFile },
    { existsSync, readFileSync, renameSync, writeFileSync },
    { join },
  ] = await Promise.all([
    import("../logging.js"),
    import("../data-dir.js"),
    import("@havn/protocol/core"),
    import("@havn/protocol/local"),
    import("node:fs"),
    import("node:path"),
  ]);
  const log = await createLogger(o);
  const path = join(resolveDataDir("coordinator", o.dataDir, log), "coordinator.key");
  let kept: string | undefined;
  // A rotation the coordinator has not registered yet (it renames the certificate when it does):
  // rotating again would certify a key the set never saw, and break the chain.
  const old = existsSync(path) ? loadOrCreateKeyFile(path) : undefined;
  const pending = (): boolean => {
    try {
      const file = JSON.parse(readFileSync(keyCertificatePath(path), "utf8")) as { public_key?: unknown };
      return file.public_key === old?.publicKey;
    } catch {
      return false;
    }
  };
  if (old && pending())
    throw new HavnError(
      "CONFIG_INVALID",
      "A key rotation is waiting for the coordinator to restart: restart it (it registers the new key), then rotate again.",
      { context: { Certificate: keyCertificatePath(path) } },
    );
  // The old key vouches for the new one: verifiers trust a rotated-in key through this certificate.
  if (old) {
    kept = `${path}.retired-${new Date().toISOString().replace(/[:.]/g, "-")}`;
    renameSync(path, kept);
  }
  const keys = loadOrCreateKeyFile(path);
  if (old) {
    const certificate = certifyKey(keys.publicKey, old, Date.now());
    writeFileSync(
      keyCertificatePath(path),
      `${JSON.stringify({ public_key: keys.publicKey, certificate }, null, 2)}\n`,
      { mode: 0o600 },
    );
  }
  process.stdout.write(
    `new coordinator key ${keys.publicKey} (key id ${keyId(keys.publicKey)})` +
      `${kept ? `, certified by ${keyId(old!.publicKey)}; the old one is kept at ${kept}` : ""}\nrestart the coordinator: it joins the key set and retires the old key\n`,
  );
}
