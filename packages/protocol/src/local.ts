// Node-only entry (`@havn/protocol/local`): a process's local state — key files and data directories.
export { defaultDataDir, legacyDataDir } from "./data-dir.js";
export type { Role } from "./data-dir.js";
export { keyCertificatePath, loadOrCreateKeyFile } from "./keyfile.js";
export { listenError } from "./listen-error.js";
