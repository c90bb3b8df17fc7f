import type { ExchangeOutcome } from './types.js';

/**
 * The outcome of an answer whose record could not be written. The answer is released
 * only once its record is durable, so it was cut instead: the record and the log line say
 * so (`complete: false`, `recording_failed`), not the upstream's status alone.
 */
export function undeliveredOutcome(outcome: ExchangeOutcome, error: unknown): ExchangeOutcome {
  const why = error instanceof Error ? error.message : String(error);
  return { ...outcome, complete: false, errorCode: 'recording_failed', errorDetail: `the answer's record could not be written, so the answer was cut: ${why}` };
}
