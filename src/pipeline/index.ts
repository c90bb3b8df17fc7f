export { runExchange, toGatehouseError, type ExchangeIO, type Inspection, type OutcomeNeeds, type PipelineStages } from './run-exchange.js';
