import type { Network } from "@havn/testkit";

/** An answer as the tests read it: status, parsed body (or `{ text }`), headers. */
export interface Answer {
  status: number;
  // Answers are read field by field; their shapes are checked by the API document's tests.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: Record<string, any>;
  headers: Headers;
}

/** One HTTP request to a test network, as a client sends it: JSON body, bearer credential, headers. */
export async function call(
  n: Network,
  method: string,
  path: string,
  options: { token?: string | undefined; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const r = await fetch(`${n.url}${path}`, {
    method,
    headers: {
      ...(options.body !== undefined ? { "content-type": "application/json" } : {}),
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
  const text = await r.text();
  let body: Answer["body"];
  try {
    body = JSON.parse(text) as Answer["body"];
  } catch {
    body = { text };
  }
  return { status: r.status, body, headers: r.headers };
}

/** Waits until `condition` holds, checking every 25 ms; throws after `timeoutMs`. */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("until: timed out");
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** An admin account (`acc-root`) made on the coordinator's host, and an API key of it with these scopes. */
export async function rootKey(n: Network, scopes: ("admin" | "metrics")[] = ["admin"]): Promise<string> {
  await n.coordinator.store.accounts.create({ id: "acc-root", email: "root@example.com", role: "admin", now: 1 });
  return (
    await n.coordinator.auth.createKey(
      { accountId: "acc-root", role: "admin", scopes: new Set(scopes), via: "access_token" },
      { name: "root", scopes },
    )
  ).key;
}
