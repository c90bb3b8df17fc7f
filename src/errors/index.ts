export { errorRegistry, errorCodes, type ErrorCode } from './registry.js';
export { GatehouseError, isGatehouseError, type GatehouseErrorOptions } from './gatehouse-error.js';
