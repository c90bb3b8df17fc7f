// Stage: authorize. Turns a Decision into a pass or a typed error.
// - deny: 403 access_denied carrying the deciding rule and its message;
// - require_approval: passes on to the approvals stage when approvals are configured,
//   and is denied otherwise (fail closed).

import { GatehouseError } from '../errors/index.js';
import type { Decision } from '../exchange/index.js';

export function enforceDecision(decision: Decision, options: { readonly approvals?: boolean } = {}): void {
  if (decision.effect === 'allow') return;
  if (decision.effect === 'require_approval' && options.approvals === true) return;
  const rule = decision.rules[0];
  const message = decision.effect === 'deny' ? decision.message : 'This request requires approval, and approvals are not enabled on this gateway.';
  throw new GatehouseError('access_denied', { message, rule, detail: decision.reason });
}
