export { checkByReexecution } from "./reexecute.js";
export type { ReexecutionResult } from "./reexecute.js";
