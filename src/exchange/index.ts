export type * from './types.js';
export { newId } from './ids.js';
export { partTexts, summarizeJsonAnswer, type AnswerSummary, type UnreadAnswerFormat } from './answer-summary.js';
export { multipartBoundary, multipartParts, MultipartError, type MultipartPart } from './multipart.js';
export { undeliveredOutcome } from './undelivered.js';
