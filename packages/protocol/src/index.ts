// Node.js entry: the zod-free core (primitives from node:crypto) and the wire schemas.
export * from "./core.js";
export * from "./schemas.js";
