export { loadConfig, parseConfig, ConfigError, formatPath, type LoadOptions } from './load.js';
export type { GatehouseConfig, ConnectionConfig } from './schema.js';
export { parseDuration, parseSize } from './units.js';
