/** A raw row as either driver returns it: JSON columns are text (SQLite) or parsed (PostgreSQL). */
export type RawRow = Record<string, unknown>;

export function json<T>(value: unknown): T {
  return (typeof value === "string" ? JSON.parse(value) : value) as T;
}

export function jsonOrNull<T>(value: unknown): T | null {
  return value === null || value === undefined ? null : json<T>(value);
}

export function num(value: unknown): number {
  return typeof value === "number" ? value : Number(value);
}

export function numOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : num(value);
}

/** `'a', 'b'` for an IN list built from constants (never user input). */
export function sqlList(values: readonly string[]): string {
  return values.map((v) => `'${v.replace(/'/g, "''")}'`).join(", ");
}
