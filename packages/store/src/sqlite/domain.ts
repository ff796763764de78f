/**
 * A store domain's SQLite statements, prepared on first use — after the migrations made their
 * tables — and kept: the domains share one connection and are built before it is migrated.
 */
export function preparedOnFirstUse<T extends object>(prepare: () => T): T {
  let prepared: T | undefined;
  return new Proxy({} as T, { get: (_target, name) => Reflect.get((prepared ??= prepare()), name) });
}
