// A credential refused although it proved whose it is: an API key whose secret matched
// but which is revoked or expired, a token whose signature verified but which is
// revoked. The refusal's record names that identity, so the question a responder asks
// after revoking a leaked key — "was it used since?" — is answered by a search on its
// subject (`sessions list --subject key:billing-agent`), refusals included.
// A wrong secret, an unknown key id or an unverified token prove nothing: those
// refusals stay anonymous, their claim only in the operator detail (claimed-identity.ts).

import { GatehouseError, type ErrorCode, type GatehouseErrorOptions } from '../errors/index.js';
import type { Identity } from '../exchange/index.js';

export class ProvenCredentialRefused extends GatehouseError {
  /** Whose credential it is: its secret or signature verified. */
  readonly identity: Identity;

  constructor(code: ErrorCode, identity: Identity, options: GatehouseErrorOptions = {}) {
    super(code, options);
    this.identity = identity;
  }
}

/** The identity a refused credential proved, when it proved one. */
export function provenIdentity(error: unknown): Identity | undefined {
  return error instanceof ProvenCredentialRefused ? error.identity : undefined;
}
