export { createLogger, exchangeLogFields, type Logger } from './logger.js';
export { createMetrics, type GatewayMetrics } from './metrics.js';
