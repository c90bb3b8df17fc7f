// `gatehouse login --issuer URL --client-id ID [--audience A] [--scope S]`: the OAuth
// 2.0 device authorization grant (RFC 8628) through openid-client. Prints where to go
// and the code to enter, polls the token endpoint at the interval the IdP asks for,
// and stores the tokens with mode 0600 (see credentials.ts).
// `gatehouse whoami --admin URL`: asks the admin API who the stored credential is.

import * as client from 'openid-client';
import { unreachableAdmin } from '../unreachable-admin.js';
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

/** An http(s) URL option, or a usage error naming it (not a TypeError's stack). */
function urlOption(flag: string, value: string, example: string): URL {
  const url = URL.canParse(value) ? new URL(value) : undefined;
  if (url?.protocol !== 'https:' && url?.protocol !== 'http:') throw new CliError(`${flag} must be a URL such as ${example} (got ${JSON.stringify(value).slice(0, 200)})`);
  return url;
}

// What the IdP said, in one line: its OAuth error code and description (RFC 6749
// §5.2, RFC 8628 §3.5), with what to do for the common ones. The IdP's answer holds
// no token when it refuses, so it is safe to print.
const deviceFlowHints: Readonly<Record<string, string>> = {
  invalid_client: 'check --client-id: the IdP does not know it, or it is not a public client',
  unauthorized_client: 'the client is not allowed the device-code grant at the IdP',
  invalid_scope: 'check --scope',
  invalid_target: 'check --audience: the IdP does not know that resource',
  access_denied: 'the sign-in was declined in the browser',
  expired_token: 'the code expired before it was confirmed; run gatehouse login again',
};

function oauthFailure(step: string, error: unknown): CliError {
  if (error instanceof client.ResponseBodyError) {
    const hint = deviceFlowHints[error.error];
    const description = error.error_description ? ` (${error.error_description.slice(0, 300)})` : '';
    return new CliError(`${step}: the identity provider answered ${error.status} ${error.error}${description}${hint ? `: ${hint}` : ''}`, 1);
  }
  return new CliError(`${step}: ${(error as Error).message}`, 1);
}

export async function loginCommand(options: LoginOptions): Promise<void> {
  const issuer = options.issuer;
  const clientId = options['client-id'];
  if (!issuer || !clientId) throw new CliError('usage: gatehouse login --issuer URL --client-id ID [--audience AUDIENCE] [--scope "openid offline_access"]');
  const server = urlOption('--issuer', issuer, 'https://login.example.com');
  // Plain http only for an IdP on this machine (development).
  const insecure = server.protocol === 'http:' && isLoopback(server);
  if (server.protocol !== 'https:' && !insecure) throw new CliError('--issuer must be an https:// URL');
  let config: client.Configuration;
  try {
    config = await client.discovery(server, clientId, { token_endpoint_auth_method: 'none' }, client.None(), insecure ? { execute: [client.allowInsecureRequests] } : undefined);
  } catch (error) {
    // A URL that answers but is no OpenID provider (a gateway URL, a path too many or too few).
    const cause = (error as { cause?: unknown }).cause;
    if (cause instanceof Response) {
      throw new CliError(`${issuer} is not an OpenID provider: ${new URL(cause.url || issuer).pathname} answered ${cause.status}; --issuer must be the IdP's issuer URL (its /.well-known/openid-configuration is read)`, 1);
    }
    throw new CliError(`cannot reach ${issuer}: ${(error as Error).message}${cause instanceof Error ? ` (${cause.message})` : ''}`, 1);
  }
  const params: Record<string, string> = { scope: options.scope ?? 'openid' };
  if (options.audience) {
    params['resource'] = options.audience; // RFC 8707
    params['audience'] = options.audience; // Auth0, Okta-style
  }
  let device: client.DeviceAuthorizationResponse;
  try {
    device = await client.initiateDeviceAuthorization(config, params);
  } catch (error) {
    throw oauthFailure('cannot start the device sign-in', error);
  }
  process.stderr.write(`To sign in, open ${device.verification_uri_complete ?? device.verification_uri}\nand confirm the code ${device.user_code}\n`);
  let tokens: Awaited<ReturnType<typeof client.pollDeviceAuthorizationGrant>>;
  try {
    tokens = await client.pollDeviceAuthorizationGrant(config, device, options.audience ? { resource: options.audience } : undefined);
  } catch (error) {
    throw oauthFailure('sign-in failed', error);
  }
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
  const url = new URL('/api/whoami', urlOption('--admin', options.admin, 'https://gatehouse-admin.example.com'));
  const credentials = loadCredentials();
  if (!credentials) throw new CliError(`not signed in (no ${credentialsPath()}); run gatehouse login`, 1);
  // The stored refresh token is not used: an expired sign-in is renewed by signing in again.
  if (credentials.expiresAt !== undefined && credentials.expiresAt <= Date.now()) {
    throw new CliError(`the sign-in stored in ${credentialsPath()} expired at ${new Date(credentials.expiresAt).toISOString()}; run gatehouse login again`, 1);
  }
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${credentials.accessToken}` } });
  } catch (error) {
    throw unreachableAdmin(url.origin, error);
  }
  const body = await res.text();
  if (!res.ok) throw new CliError(`admin API answered ${res.status}: ${body}`, 1);
  process.stdout.write(`${body}\n`);
}
