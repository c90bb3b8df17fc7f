// `gatehouse login --issuer URL --client-id ID [--audience A] [--scope S]`: the OAuth
// 2.0 device authorization grant (RFC 8628) through openid-client. Prints where to go
// and the code to enter, polls the token endpoint at the interval the IdP asks for,
// and stores the tokens with mode 0600 (see credentials.ts).
// `gatehouse whoami --admin URL`: asks the admin API who the stored credential is.

import * as client from 'openid-client';
import { CliError } from '../cli-error.js';
import { credentialsPath, loadCredentials, saveCredentials } from '../credentials.js';

export interface LoginOptions {
  readonly issuer?: string | undefined;
  readonly 'client-id'?: string | undefined;
  readonly audience?: string | undefined;
  readonly scope?: string | undefined;
  readonly admin?: string | undefined;
}

function isLoopback(url: URL): boolean {
  return url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
}

export async function loginCommand(options: LoginOptions): Promise<void> {
  const issuer = options.issuer;
  const clientId = options['client-id'];
  if (!issuer || !clientId) throw new CliError('usage: gatehouse login --issuer URL --client-id ID [--audience AUDIENCE] [--scope "openid offline_access"]');
  const server = new URL(issuer);
  // Plain http only for an IdP on this machine (development).
  const insecure = server.protocol === 'http:' && isLoopback(server);
  if (server.protocol !== 'https:' && !insecure) throw new CliError('--issuer must be an https:// URL');
  let config: client.Configuration;
  try {
    config = await client.discovery(server, clientId, { token_endpoint_auth_method: 'none' }, client.None(), insecure ? { execute: [client.allowInsecureRequests] } : undefined);
  } catch (error) {
    throw new CliError(`cannot reach ${issuer}: ${(error as Error).message}`, 1);
  }
  const params: Record<string, string> = { scope: options.scope ?? 'openid' };
  if (options.audience) {
    params['resource'] = options.audience; // RFC 8707
    params['audience'] = options.audience; // Auth0, Okta-style
  }
  const device = await client.initiateDeviceAuthorization(config, params);
  process.stderr.write(`To sign in, open ${device.verification_uri_complete ?? device.verification_uri}\nand confirm the code ${device.user_code}\n`);
  const tokens = await client.pollDeviceAuthorizationGrant(config, device, options.audience ? { resource: options.audience } : undefined);
  const expiresIn = tokens.expiresIn();
  const path = saveCredentials({
    issuer,
    clientId,
    accessToken: tokens.access_token,
    refreshToken: tokens.refresh_token,
    expiresAt: expiresIn === undefined ? undefined : Date.now() + expiresIn * 1000,
  });
  process.stderr.write(`signed in; credentials saved to ${path}\n`);
}

export async function whoamiCommand(options: LoginOptions): Promise<void> {
  if (!options.admin) throw new CliError('usage: gatehouse whoami --admin URL');
  const credentials = loadCredentials();
  if (!credentials) throw new CliError(`not signed in (no ${credentialsPath()}); run gatehouse login`, 1);
  // The stored refresh token is not used: an expired sign-in is renewed by signing in again.
  if (credentials.expiresAt !== undefined && credentials.expiresAt <= Date.now()) {
    throw new CliError(`the sign-in stored in ${credentialsPath()} expired at ${new Date(credentials.expiresAt).toISOString()}; run gatehouse login again`, 1);
  }
  const res = await fetch(new URL('/api/whoami', options.admin), { headers: { authorization: `Bearer ${credentials.accessToken}` } });
  const body = await res.text();
  if (!res.ok) throw new CliError(`admin API answered ${res.status}: ${body}`, 1);
  process.stdout.write(`${body}\n`);
}
