export { startPostgresListener, type PostgresListener, type PostgresListenerOptions } from './listener.js';
export type { PostgresConnection } from './connection.js';
export { inspectSql, type SqlInspection, type StatementFacts } from './inspect-sql.js';
export { dryRunStatement, type StatementDryRunInput } from './dry-run.js';
export { entityMasking, type EntityMasking } from './entity-masking.js';
export type { MaskingRules } from './mask-rows.js';
