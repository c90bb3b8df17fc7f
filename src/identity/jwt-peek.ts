// Reads a compact JWS's header and payload WITHOUT verifying it: to choose the
// authenticator (by `iss`) and to say who was claimed when authentication fails.
// Nothing read here is trusted. Bounded: tokens above 16 KiB are not parsed.

import { decodeJwt, decodeProtectedHeader, type JWTPayload, type ProtectedHeaderParameters } from 'jose';

export const maxTokenLength = 16 * 1024;
const compactJws = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export interface PeekedJwt {
  readonly header: ProtectedHeaderParameters;
  readonly payload: JWTPayload;
}

export function looksLikeJwt(token: string): boolean {
  return token.length <= maxTokenLength && token.startsWith('eyJ') && compactJws.test(token);
}

export function peekJwt(token: string): PeekedJwt | undefined {
  if (!looksLikeJwt(token)) return undefined;
  try {
    return { header: decodeProtectedHeader(token), payload: decodeJwt(token) };
  } catch {
    return undefined;
  }
}
