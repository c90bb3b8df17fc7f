// A credential refused outside a data-plane exchange (POST /auth/token, the admin API,
// the agent endpoint) is a failed authentication on record, in the hash chain: the data
// plane chains its own as `exchange.refused`, and a refusal kept only in a log line
// could be deleted without a trace (a guessing run against an admin key, say).
// Awaited before the answer, so no refusal goes unrecorded; the refusal stands whether
// or not its record could be written.

import type { EventInput } from '../audit/index.js';
import type { GatehouseError } from '../errors/index.js';
import type { ThrottledEvent } from './auth-throttle.js';
import { provenIdentity } from './proven-identity.js';

export interface AuthRefusal {
  /** The listener that refused it. */
  readonly listener: 'data' | 'admin' | 'agents';
  /** What was asked: `<METHOD> <path>`, credentials in the path already redacted. */
  readonly request: string;
  /** The 401: its code, and its detail (who was claimed, never the credential: identify-caller.ts). */
  readonly error: GatehouseError;
  readonly client: string | undefined;
}

export type RecordAuthRefusal = (refusal: AuthRefusal) => Promise<void>;

const maxReasonChars = 300;
const maxRequestChars = 200;

export function authRefusedEvent(refusal: AuthRefusal): EventInput {
  return {
    kind: 'auth.refused',
    // A revoked or expired credential proved whose it is; any other refusal is anonymous.
    actor: provenIdentity(refusal.error)?.subject ?? null,
    target: refusal.request.slice(0, maxRequestChars),
    details: { listener: refusal.listener, code: refusal.error.code, reason: (refusal.error.detail ?? refusal.error.message).slice(0, maxReasonChars), client: refusal.client ?? null },
  };
}

/**
 * The moment an address (or an API key id) became throttled: one event per throttle, not
 * one per attempt refused after it (those are neither checked nor recorded), so guessing
 * cannot flood the chain. Its target is what was throttled; the client is the address
 * whose failure reached the limit.
 */
export function authThrottledEvent(event: ThrottledEvent): EventInput {
  return {
    kind: 'auth.throttled',
    actor: null,
    target: event.scope === 'address' ? `address:${event.key}` : `key-id:${event.key}`,
    details: { listener: event.listener, scope: event.scope, client: event.client, failures: event.failures, windowMs: event.windowMs, throttledForMs: event.retryAfterMs },
  };
}
