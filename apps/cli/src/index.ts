export { program, run } from "./main.js";
