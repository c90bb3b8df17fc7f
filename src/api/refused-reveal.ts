// The audit event of a refused reveal of raw content (POST /api/sessions/:id/reveal): a
// caller outside audit.raw.revealGroups or the admin groups, an unknown credential, an
// exchange that does not exist or kept no raw content, a malformed request. Who tried,
// which exchange, why refused; never the credential, and the id only as far as it is
// an id: the path segment is the caller's text, bounded and with credentials redacted.

import type { EventInput } from '../audit/index.js';
import { redactPathCredentials } from '../detect/index.js';
import type { GatehouseError } from '../errors/index.js';
import type { Identity } from '../exchange/index.js';

/** Longer than any exchange id (`ex_` + 26), short enough that a pasted document is not kept. */
const maxTargetChars = 128;
const maxReasonChars = 300;

export function refusedRevealEvent(caller: Identity | undefined, id: string, refusal: GatehouseError): EventInput {
  const target = redactPathCredentials(`/${id}`).slice(1, maxTargetChars + 1);
  // The message the caller was answered, naming the exchange as recorded here.
  const reason = (id === target ? refusal.message : refusal.message.replaceAll(id, target)).slice(0, maxReasonChars);
  return {
    kind: 'exchange.reveal_refused',
    actor: caller?.subject ?? null,
    target: target === '' ? null : target,
    details: { code: refusal.code, status: refusal.status, reason, ...(refusal.rule ? { rule: refusal.rule } : {}), ...(caller ? { groups: caller.groups } : {}) },
  };
}
