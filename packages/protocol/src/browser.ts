// Browser entry: the zod-free core (pure-JS primitives, nothing from node:*) and the wire schemas.
export * from "./core-browser.js";
export * from "./schemas.js";
