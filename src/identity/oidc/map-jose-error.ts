// jose's verification errors → Gatehouse codes, one precise code per failure, with
// the operator-only detail. Anything that is not a verdict on the token (network,
// JWKS unreachable or invalid) is identity_provider_unavailable: fail closed, 503.

import { errors } from 'jose';
import { GatehouseError, isGatehouseError } from '../../errors/index.js';

export function mapJoseError(error: unknown, issuer: string): GatehouseError {
  if (isGatehouseError(error)) return error;
  const where = `issuer ${issuer}`;
  if (error instanceof errors.JWTExpired) return new GatehouseError('credential_expired', { detail: `token expired (${where})` });
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'aud') return new GatehouseError('token_audience_invalid', { detail: `aud mismatch (${where})` });
    if (error.claim === 'iss') return new GatehouseError('token_issuer_unknown', { detail: `iss mismatch (${where})` });
    if (error.claim === 'nbf' || (error.claim === 'iat' && error.reason === 'check_failed')) return new GatehouseError('token_not_yet_valid', { detail: `${error.claim} in the future (${where})` });
    return new GatehouseError('invalid_credential', { detail: `claim ${error.claim}: ${error.message} (${where})` });
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return new GatehouseError('token_algorithm_not_allowed', { detail: `${error.message} (${where})` });
  if (error instanceof errors.JWSSignatureVerificationFailed) return new GatehouseError('token_signature_invalid', { detail: `signature does not verify (${where})` });
  if (error instanceof errors.JWKSNoMatchingKey) return new GatehouseError('token_signature_invalid', { detail: `no key in the JWKS matches the token's kid/alg (${where})` });
  if (error instanceof errors.JWKSMultipleMatchingKeys) return new GatehouseError('token_signature_invalid', { detail: `several JWKS keys match and none verifies (${where})` });
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return new GatehouseError('invalid_credential', { detail: `malformed token: ${error.message} (${where})` });
  if (error instanceof errors.JOSENotSupported) return new GatehouseError('token_algorithm_not_allowed', { detail: `${error.message} (${where})` });
  return new GatehouseError('identity_provider_unavailable', { detail: `cannot verify (${where}): ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`, cause: error });
}
