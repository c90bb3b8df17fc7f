export { loadConfig, parseConfig, inspectConfigSource, readConfigSource, ConfigError, formatPath, type ConfigInspection, type LoadOptions } from './load.js';
export type { GatehouseConfig, ConnectionConfig } from './schema.js';
export { parsePolicySection, rawConnectionNames, unknownConnectionNames } from './schema.js';
export { isOperationName } from './policy-schema.js';
export { parseDuration, parseIsoTime, parseSize } from './units.js';
export { assertCertificates, certificateIssues, rawCertificateSettings } from './certificates.js';
export { changedReviewRules, changesNeedingRestart } from './restart-needed.js';
