export { loadConfig, parseConfig, ConfigError, formatPath, type LoadOptions } from './load.js';
export type { GatehouseConfig, ConnectionConfig } from './schema.js';
export { unknownConnectionNames } from './schema.js';
export { isOperationName } from './policy-schema.js';
export { parseDuration, parseIsoTime, parseSize } from './units.js';
export { assertCertificates, certificateIssues } from './certificates.js';
export { changedReviewRules, changesNeedingRestart } from './restart-needed.js';
