// The user-name rule: the StartupMessage `user` must name the identity that the
// password (a Gatehouse API key or gateway token) proves. It matches when it equals
// the identity's subject (`key:ci-bot`) or the subject without its kind prefix
// (`ci-bot`, the API key's name). A mismatch is refused with 28000.

import type { Identity } from '../../exchange/index.js';

export function userMatchesIdentity(user: string, identity: Identity): boolean {
  if (user === identity.subject) return true;
  const colon = identity.subject.indexOf(':');
  return colon > 0 && user === identity.subject.slice(colon + 1);
}
