// The IdP posts the SAML Response to the ACS from its own site, so the browser does not
// send the SameSite=Lax cookie that binds the login to it. The ACS answers that POST
// with this page, which re-posts the Response from the gateway's own origin to
// /auth/saml/complete, where the cookie is sent. (SameSite=None would need TLS; this
// works on plain-http listeners too.) The page adds no trust: /auth/saml/complete still
// requires the cookie and a Response answering the request it names.

import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';

export const samlCompletePath = '/auth/saml/complete';

const script = 'document.forms[0].submit();';
const scriptHash = createHash('sha256').update(script).digest('base64');

function escapeAttribute(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function sendSamlRelayPage(res: ServerResponse, samlResponse: string): void {
  const body = `<!doctype html><html><head><meta charset="utf-8"><title>Signing in…</title></head><body>
<form method="post" action="${samlCompletePath}"><input type="hidden" name="SAMLResponse" value="${escapeAttribute(samlResponse)}"><noscript><button type="submit">Continue signing in</button></noscript></form>
<script>${script}</script></body></html>`;
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // Only this script runs, the form may only post back here, and no other site may frame the page.
    'content-security-policy': `default-src 'none'; script-src 'sha256-${scriptHash}'; form-action 'self'; frame-ancestors 'none'`,
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
  });
  res.end(body);
}
