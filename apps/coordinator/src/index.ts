export { buildApp, coordinatorVersion } from "./app.js";
export type { BuildAppOptions, CoordinatorApp } from "./app.js";
export { openApiDocument } from "./api/openapi.js";
export { routes } from "./api/route-table.js";
export type { RouteSpec } from "./api/route-table.js";
export { compileConfig } from "./config.js";
export type { CoordinatorConfig, CoordinatorOptions } from "./config.js";
export { createAdmin, startCoordinator } from "./main.js";
export type { StartOptions } from "./main.js";
