// The pipeline: every protocol adapter hands its exchange to runExchange, and every
// exchange takes the same path, in this order:
//
//   identify   who is calling (401 when nobody, or a bad credential)
//   inspect    the adapter reads the request, bounded, into protocol-neutral facts
//   decide     policy turns exchange + facts into a Decision
//   authorize  a deny (or an approval nobody can give yet) stops here (403)
//   record     the request is durable before anything is forwarded (fail closed)
//   forward    the adapter relays to the target and streams the answer back;
//              the outcome is recorded before the last byte is released
//
// A refusal at any stage is recorded too, then written in the protocol's own shape.

import { GatehouseError, isGatehouseError } from '../errors/index.js';
import type { Decision, Exchange, ExchangeOutcome, Identity, RecordedRequest, RequestFacts } from '../exchange/index.js';
import type { ExchangeProgress, Recorder } from '../audit/index.js';
import type { Policy } from '../policy/index.js';
import { enforceDecision } from '../policy/index.js';

export interface PipelineStages {
  readonly identify: (credential: string | undefined) => Promise<Identity>;
  readonly policy: Policy;
  readonly recorder: Recorder;
  /** Observes every finished exchange (metrics, logs). Must not throw. */
  readonly observe: (exchange: Exchange, decision: Decision | undefined, outcome: ExchangeOutcome) => void;
}

export interface Inspection {
  readonly operation: string;
  readonly facts: RequestFacts;
  readonly request: RecordedRequest;
}

/** What a protocol adapter provides for one exchange. */
export interface ExchangeIO {
  /** The exchange as parsed from the wire, before identity and inspection. */
  readonly exchange: Exchange;
  readonly credential: string | undefined;
  /** What the request looks like before its body is read (recorded on early refusal). */
  readonly requestLine: RecordedRequest;
  inspect(): Promise<Inspection>;
  /**
   * Forwards and streams the answer back. Must call `finish` with the outcome and
   * await it before releasing the last byte to the client.
   */
  relay(exchange: Exchange, finish: (outcome: ExchangeOutcome) => Promise<void>, progress: (progress: ExchangeProgress) => Promise<void>): Promise<void>;
  /** Writes an error in the protocol's own shape. */
  fail(error: GatehouseError): void;
  elapsedMs(): number;
}

export async function runExchange(io: ExchangeIO, stages: PipelineStages): Promise<void> {
  let exchange = io.exchange;
  let decision: Decision | undefined;
  let request = io.requestLine;
  try {
    const identity = await stages.identify(io.credential);
    exchange = { ...exchange, identity };
    const inspection = await io.inspect();
    request = inspection.request;
    exchange = { ...exchange, operation: inspection.operation, facts: inspection.facts };
    decision = stages.policy.decide(exchange);
    enforceDecision(decision);
  } catch (error) {
    await refuse(io, stages, exchange, decision, request, toGatehouseError(error));
    return;
  }

  try {
    await stages.recorder.open(exchange, decision, request);
  } catch (error) {
    const failure = new GatehouseError('recording_failed', { detail: (error as Error).message, cause: error });
    io.fail(failure);
    stages.observe(exchange, decision, refusalOutcome(io, failure));
    return;
  }

  let outcome: ExchangeOutcome | undefined;
  const finish = async (result: ExchangeOutcome) => {
    outcome = result;
    await stages.recorder.finish(exchange, result);
  };
  // What a streamed answer has delivered so far, recorded while it streams (best effort:
  // the finish write is the one the client waits for).
  const progress = (snapshot: ExchangeProgress) =>
    outcome === undefined ? stages.recorder.progress(exchange, snapshot).catch(() => undefined) : Promise.resolve();
  try {
    await io.relay(exchange, finish, progress);
  } catch (error) {
    // relay records its own outcome whenever it got far enough to have one; this path
    // covers a failure before that.
    if (outcome === undefined) {
      const failure = toGatehouseError(error);
      outcome = refusalOutcome(io, failure);
      io.fail(failure);
      await stages.recorder.finish(exchange, outcome).catch(() => undefined);
    }
  }
  if (outcome) stages.observe(exchange, decision, outcome);
}

async function refuse(io: ExchangeIO, stages: PipelineStages, exchange: Exchange, decision: Decision | undefined, request: RecordedRequest, error: GatehouseError) {
  const outcome = refusalOutcome(io, error);
  try {
    await stages.recorder.refuse(exchange, decision, request, outcome);
  } catch {
    // The refusal is still a refusal; nothing was forwarded, so nothing is lost but the
    // record of it, which the log line from observe() still carries.
  }
  io.fail(error);
  stages.observe(exchange, decision, outcome);
}

function refusalOutcome(io: ExchangeIO, error: GatehouseError): ExchangeOutcome {
  return {
    status: error.status,
    complete: true,
    bytesIn: 0,
    bytesOut: 0,
    ttfbMs: undefined,
    durationMs: io.elapsedMs(),
    errorCode: error.code,
    errorDetail: error.detail,
  };
}

export function toGatehouseError(error: unknown): GatehouseError {
  if (isGatehouseError(error)) return error;
  return new GatehouseError('internal_error', { detail: error instanceof Error ? `${error.name}: ${error.message}` : String(error), cause: error });
}
