export { createRecorder, type Recorder } from './recorder.js';
export { recordableHeaders } from './recordable-headers.js';
export { GroupCommitWriter } from './group-commit.js';
export { listExchanges, getExchange, maxPageSize, type ExchangeFilter, type ExchangeSummary, type ExchangeDetail } from './exchange-query.js';
