export { createDataPlaneHandler, type DataPlaneOptions } from './data-plane.js';
export { parseDataPlanePath, joinUpstreamPath, targetQuery, hasDotSegment, type HttpConnection } from './connection.js';
export { writeError, errorEnvelope } from './write-error.js';
export { bearerToken } from './headers.js';
export type { ResponseGuard } from './response-filters.js';
export { dryRunExchange, type DryRunInput } from './dry-run-exchange.js';
export { credentialEchoForms, credentialMarker, type CredentialEchoForms } from './credential-echo.js';
