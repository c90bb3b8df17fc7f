// The pipeline: every protocol adapter hands its exchange to runExchange, and every
// exchange takes the same path, in this order:
//
//   identify   who is calling (401 when nobody, or a bad credential)
//   inspect    the adapter reads the request, bounded, into protocol-neutral facts
//   scope      a scoped Gatehouse token reaches only its connections / operations (403)
//   decide     policy turns exchange + facts into a Decision
//   authorize  a deny (or an approval nobody can give: approvals not configured) stops here (403)
//   approve    a `require_approval` exchange is held until a reviewer decides
//              (src/approvals/); refused with the review id when not approved
//   limits     rate, volume and concurrency limits (429 with Retry-After); released at the end;
//              an approval is used (approved → executed) only once these admitted it
//   record     the request is durable before anything is forwarded (fail closed)
//   forward    the adapter relays to the target and streams the answer back;
//              the outcome is recorded before the last byte is released
//
// A refusal at any stage is recorded too, then written in the protocol's own shape.

import { GatehouseError, isGatehouseError } from '../errors/index.js';
import { undeliveredOutcome, type Decision, type Exchange, type ExchangeOutcome, type Identity, type RecordedRequest, type RequestFacts } from '../exchange/index.js';
import type { ApprovalStage } from '../approvals/index.js';
import type { ExchangeProgress, Recorder } from '../audit/index.js';
import type { DecisionPolicy } from '../policy/index.js';
import { provenIdentity } from '../identity/proven-identity.js';
import { isStoreUnreachable } from '../store/index.js';
import { enforceDecision, withLimitObligations, type Admission, type Limiter } from '../policy/index.js';

export interface PipelineStages {
  /** Told the client's address: failed authentications are throttled per address (identity/auth-throttle.ts). */
  readonly identify: (credential: string | undefined, client?: string) => Promise<Identity>;
  readonly policy: DecisionPolicy;
  readonly limits?: Limiter | undefined;
  readonly recorder: Recorder;
  /** Holds `require_approval` exchanges for review; without it they are refused (fail closed). */
  readonly approvals?: ApprovalStage | undefined;
  /** Checks the identity may reach this connection / operation at all (scoped tokens). */
  readonly checkScope?: ((exchange: Exchange) => void) | undefined;
  /** Observes every finished exchange (metrics, logs). Must not throw. */
  readonly observe: (exchange: Exchange, decision: Decision | undefined, outcome: ExchangeOutcome) => void;
  /**
   * Redacts credentials in the body and prompt text of a refused request before they are
   * recorded: they were never forwarded, and a request refused for carrying a secret
   * must not leave it in the recording (the body is kept sealed only with audit.raw).
   */
  readonly redactRefused?: ((text: string) => string) | undefined;
}

export interface Inspection {
  readonly operation: string;
  readonly facts: RequestFacts;
  readonly request: RecordedRequest;
  /** SHA-256 of the canonical request body (approvals/request-digest.ts); approvals are bound to it. */
  readonly digest?: string | undefined;
}

/** What the stages after the relay read of the outcome, beyond what the recorder keeps. */
export interface OutcomeNeeds {
  /** The answer's token usage: a token limit counts it when the exchange ends. */
  readonly usage: boolean;
}

const needsNothing: OutcomeNeeds = { usage: false };
const needsUsage: OutcomeNeeds = { usage: true };

/** What a protocol adapter provides for one exchange. */
export interface ExchangeIO {
  /** The exchange as parsed from the wire, before identity and inspection. */
  readonly exchange: Exchange;
  readonly credential: string | undefined;
  /** What the request looks like before its body is read (recorded on early refusal). */
  readonly requestLine: RecordedRequest;
  /**
   * The request with its body, once the body has been read, whether or not inspection
   * then succeeded: a body refused as unreadable (not JSON) is recorded as sent.
   */
  readonly requestRead?: RecordedRequest | undefined;
  /** Bytes of the request body read so far (the outcome's `bytesIn` when refused). */
  readonly bytesRead?: number | undefined;
  /** What the caller said about approval: its reason, and a review to use (HTTP: Gatehouse-Justification, Gatehouse-Review). */
  readonly approval?: { readonly justification?: string | undefined; readonly reviewId?: string | undefined } | undefined;
  /**
   * For an approval hold: aborted when the caller goes away, or when the exchange is cut
   * (its identity revoked, the gateway shutting down), with that error as the reason.
   */
  holdSignal?(exchange: Exchange): AbortSignal;
  inspect(): Promise<Inspection>;
  /**
   * The request as it is to be recorded once the decision is known, when it differs
   * from the inspected one: an adapter that scrubs requests (masking with `applyTo:
   * request`) returns the scrubbed request and prompt text, so the record keeps the
   * masked content, as for answers. Undefined: record the request as inspected.
   */
  recordedRequest?(exchange: Exchange, decision: Decision): { readonly request: RecordedRequest; readonly text: string | undefined } | undefined;
  /**
   * The request scrubbed as `recordedRequest` would scrub it, for a record that is not
   * forwarded: a refusal's, and a review's preview. Without it, a request refused (or
   * held) on a connection that scrubs requests would keep in the store the very values
   * the scrubbing keeps out of an allowed request's record. Undefined: nothing to scrub.
   */
  scrubbedForRecord?(exchange: Exchange, decision: Decision | undefined, request: RecordedRequest): { readonly request: RecordedRequest; readonly text: string | undefined } | undefined;
  /**
   * What a review shows of a request that has no prompt text (an `http` connection: the
   * request line with its query, and the body as it would be recorded), from the request
   * as it is recorded (scrubbed). Undefined: the prompt text is the preview.
   */
  reviewPreview?(request: RecordedRequest): string | undefined;
  /**
   * Forwards and streams the answer back. Must call `finish` with the outcome and
   * await it before releasing the last byte to the client.
   */
  relay(exchange: Exchange, finish: (outcome: ExchangeOutcome) => Promise<void>, decision: Decision, progress: (progress: ExchangeProgress) => Promise<void>, needs: OutcomeNeeds): Promise<void>;
  /** Writes an error in the protocol's own shape. */
  fail(error: GatehouseError): void;
  elapsedMs(): number;
}

export async function runExchange(io: ExchangeIO, stages: PipelineStages): Promise<void> {
  let exchange = io.exchange;
  let decision: Decision | undefined;
  let request = io.requestLine;
  let admission: Admission | undefined;
  let inspection: Inspection;
  let identity: Identity | undefined;
  let useApproval: (() => Promise<void>) | undefined;
  let restoreApproval: (() => Promise<void>) | undefined;
  try {
    identity = await stages.identify(io.credential, io.exchange.client.address);
    inspection = await io.inspect();
    request = inspection.request;
    // One new exchange for both stages' additions (a refusal in between makes its own).
    exchange = inspected(exchange, identity, inspection);
    stages.checkScope?.(exchange);
    decision = stages.policy.decide(exchange);
    enforceDecision(decision, { approvals: stages.approvals !== undefined });
    if (decision.effect === 'require_approval' && stages.approvals) {
      // Read only here: an adapter may compute the digest lazily (it hashes the whole body).
      // The review shows reviewers (and their webhooks) the prompt as the model would get it.
      const scrubbed = io.scrubbedForRecord?.(exchange, decision, request);
      const shown = io.reviewPreview?.(scrubbed?.request ?? request);
      const preview = shown !== undefined ? { preview: shown } : scrubbed === undefined ? {} : { preview: scrubbed.text ?? '' };
      const held = await stages.approvals.hold(exchange, decision, { digest: inspection.digest, ...io.approval, ...preview, signal: io.holdSignal?.(exchange), deferUse: true });
      exchange = { ...exchange, approval: held.approval };
      // Decided again when the policy changed during the hold (the record keeps that decision).
      if (held.decision) decision = held.decision;
      if (held.error) throw held.error;
      useApproval = held.use;
      restoreApproval = held.restore;
    }
    // Before admission, so a request that cannot be scrubbed holds no limit slot.
    const scrubbed = io.recordedRequest?.(exchange, decision);
    if (scrubbed) {
      request = scrubbed.request;
      exchange = { ...exchange, facts: { ...exchange.facts, text: scrubbed.text } };
    }
    admission = await stages.limits?.admit(exchange);
    decision = withLimitObligations(decision, admission);
    // Last: a request refused by a limit (or by scrubbing) leaves its single-use
    // approval unused, so the caller's retry with Gatehouse-Review still works.
    if (useApproval) {
      try {
        await useApproval();
      } catch (error) {
        await admission?.release(undefined);
        admission = undefined;
        throw error;
      }
    }
  } catch (error) {
    // Throttled: answered without a record. Each would be one more event in the chain, for
    // an attacker to add at will; the throttle's start is on record (`auth.throttled`).
    if (isGatehouseError(error) && error.code === 'auth_throttled') {
      io.fail(error);
      stages.observe(exchange, undefined, refusalOutcome(io, error));
      return;
    }
    // Refused after identify but before the exchange took the identity (inspection failed),
    // or by identify for a credential that proved whose it is (revoked, expired).
    identity ??= provenIdentity(error);
    if (identity !== undefined && exchange.identity === undefined) exchange = { ...exchange, identity };
    // Inspection read the body, then refused it: record the body as it was sent.
    if (request === io.requestLine && io.requestRead) request = io.requestRead;
    await refuse(io, stages, exchange, decision, request, toGatehouseError(error));
    return;
  }

  try {
    await stages.recorder.open(exchange, decision, request);
  } catch (error) {
    const failure = new GatehouseError('recording_failed', { detail: (error as Error).message, cause: error });
    io.fail(failure);
    stages.observe(exchange, decision, refusalOutcome(io, failure));
    await admission?.release(undefined);
    return;
  }

  let outcome: ExchangeOutcome | undefined;
  // Before the caller can see the answer, so its immediate retry finds the approval again.
  const giveBackApproval = async (result: ExchangeOutcome) => {
    if (restoreApproval && targetDidNotAct(result)) await restoreApproval().catch(() => undefined);
  };
  const finish = async (result: ExchangeOutcome) => {
    outcome = result;
    await giveBackApproval(result);
    try {
      await stages.recorder.finish(exchange, result, (error) => undeliveredOutcome(result, error));
    } catch (error) {
      // The relay cuts the answer: the log line must not say it was delivered.
      outcome = undeliveredOutcome(result, error);
      throw error;
    }
  };
  // What a streamed answer has delivered so far, recorded while it streams. The stream
  // does not wait for it, but a write that fails cuts the answer (the relay's tracker).
  const progress = (snapshot: ExchangeProgress) => (outcome === undefined ? stages.recorder.progress(exchange, snapshot) : Promise.resolve());
  try {
    await io.relay(exchange, finish, decision, progress, admission?.readsUsage ? needsUsage : needsNothing);
  } catch (error) {
    // relay records its own outcome whenever it got far enough to have one; this path
    // covers a failure before that. The record is written before the error is, as for
    // every other answer, so whoever reads the error can find its record.
    if (outcome === undefined) {
      const failure = toGatehouseError(error);
      outcome = refusalOutcome(io, failure);
      await giveBackApproval(outcome);
      await stages.recorder.finish(exchange, outcome).catch(() => undefined);
      io.fail(failure);
    }
  }
  await admission?.release(outcome);
  if (outcome) stages.observe(exchange, decision, outcome);
}

/**
 * The request never reached the target (it could not be reached, or no agent took it),
 * or the target refused it unread (its own 429): a single-use approval it used is
 * given back. Any other answer, an error mid-answer included, may have acted on it.
 */
function targetDidNotAct(outcome: ExchangeOutcome): boolean {
  if (outcome.errorCode === undefined) return outcome.status === 429;
  return outcome.errorCode === 'upstream_unreachable' || outcome.errorCode === 'agent_unavailable';
}

/**
 * The exchange with its identity and what inspection found. Written out field by field
 * where it can be: V8 (Node 20) gives every object made by `{ ...o, newKey }` a hidden
 * class of its own, so every stage that reads such an exchange runs its property reads
 * megamorphic. Same fields, same order as the spread.
 */
function inspected(e: Exchange, identity: Identity, inspection: Inspection): Exchange {
  if (e.identity !== undefined || e.approval !== undefined) return { ...e, identity, operation: inspection.operation, facts: inspection.facts };
  return { id: e.id, sessionId: e.sessionId, protocol: e.protocol, connection: e.connection, operation: inspection.operation, startedAt: e.startedAt, client: e.client, facts: inspection.facts, identity };
}

async function refuse(io: ExchangeIO, stages: PipelineStages, exchange: Exchange, decision: Decision | undefined, request: RecordedRequest, error: GatehouseError) {
  const outcome = refusalOutcome(io, error);
  const scrubbed = io.scrubbedForRecord?.(exchange, decision, request);
  if (scrubbed) {
    request = scrubbed.request;
    exchange = { ...exchange, facts: { ...exchange.facts, text: scrubbed.text } };
  }
  const redact = stages.redactRefused;
  if (redact) {
    const body = request.body === undefined ? undefined : redact(request.body);
    if (body !== request.body) request = { ...request, body, rawBody: request.rawBody ?? request.body };
    const text = exchange.facts.text === undefined ? undefined : redact(exchange.facts.text);
    if (text !== exchange.facts.text) exchange = { ...exchange, facts: { ...exchange.facts, text } };
  }
  // A limit's refusal names the limit (`rule` in the envelope), not a rule of the
  // decision: record it among the rules too, so a search by that rule finds it.
  if (decision !== undefined && error.rule !== undefined && !decision.rules.includes(error.rule)) decision = { ...decision, rules: [...decision.rules, error.rule] };
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
    bytesIn: io.bytesRead ?? 0,
    bytesOut: 0,
    ttfbMs: undefined,
    durationMs: io.elapsedMs(),
    errorCode: error.code,
    errorDetail: error.detail,
  };
}

export function toGatehouseError(error: unknown): GatehouseError {
  if (isGatehouseError(error)) return error;
  // A store that is down is not a bug: the caller may retry, the operator checks /readyz.
  if (isStoreUnreachable(error)) return new GatehouseError('store_unavailable', { detail: error instanceof Error ? `${error.name}: ${error.message}` : String(error), cause: error });
  return new GatehouseError('internal_error', { detail: error instanceof Error ? `${error.name}: ${error.message}` : String(error), cause: error });
}
