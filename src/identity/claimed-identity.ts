// Who a refused credential claimed to be, for the failed-authentication record:
// an API key's id, or a JWT's unverified iss / sub / jti — never the token, its
// secret or its signature. Values are untrusted, so they are quoted and truncated.

import { parseApiKey } from './api-key-format.js';
import { peekJwt } from './jwt-peek.js';

const clip = (value: unknown) => JSON.stringify(String(value).slice(0, 120));

export function claimedIdentity(token: string): string {
  const key = parseApiKey(token);
  if (key) return `claimed key id ${key.id}`;
  if (token.startsWith('ghk_')) return 'claimed a malformed API key';
  const jwt = peekJwt(token);
  if (jwt) {
    const { iss, sub, jti } = jwt.payload;
    return `claimed iss=${clip(iss)} sub=${clip(sub)}${jti === undefined ? '' : ` jti=${clip(jti)}`} alg=${clip(jwt.header.alg)}`;
  }
  return `claimed an unrecognised credential of ${token.length} characters`;
}
