// Worker-thread entry for bench/roles.ts: loads TypeScript through tsx (workers do not inherit --import).
import { register } from "tsx/esm/api";

register();
await import("./roles.ts");
