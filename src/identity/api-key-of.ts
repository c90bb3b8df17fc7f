// Which API key an identity stands on: the key itself (method api_key), or the key a
// Gatehouse token was exchanged for (its `via`). Undefined for a person signed in
// through an identity provider or SAML, whose subject is the person whatever the token.
// An approval is bound to it (src/approvals): another key of the same subject — the key
// of a rotation, or one created under the name after a revocation — is another caller.

import type { Identity } from '../exchange/index.js';

const apiKeyId = /^[0-9a-z]{16}$/;

export function apiKeyOf(identity: Identity): string | undefined {
  if (identity.method === 'api_key') return identity.credentialId;
  const via = identity.method === 'gateway_token' ? identity.exchangedFrom : undefined;
  return via !== undefined && apiKeyId.test(via) ? via : undefined;
}
