export { runExchange, toGatehouseError, type ExchangeIO, type Inspection, type PipelineStages } from './run-exchange.js';
