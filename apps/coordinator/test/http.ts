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
