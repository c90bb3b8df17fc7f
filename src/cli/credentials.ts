// The command line's own credential, from `gatehouse login`: kept in
// $XDG_CONFIG_HOME/gatehouse/credentials.json (default ~/.config/gatehouse/), the
// directory 0700 and the file 0600, written to a temp file and renamed so a reader
// never sees half of it. Commands that talk to the admin API send its access token.

import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface StoredCredentials {
  readonly issuer: string;
  readonly clientId: string;
  readonly accessToken: string;
  readonly refreshToken?: string | undefined;
  /** epoch ms */
  readonly expiresAt?: number | undefined;
}

export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'gatehouse', 'credentials.json');
}

export function saveCredentials(credentials: StoredCredentials, env: NodeJS.ProcessEnv = process.env): string {
  const path = credentialsPath(env);
  const dir = join(path, '..');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temp, 0o600); // in case the file existed with looser bits
  renameSync(temp, path);
  return path;
}

export function loadCredentials(env: NodeJS.ProcessEnv = process.env): StoredCredentials | undefined {
  try {
    return JSON.parse(readFileSync(credentialsPath(env), 'utf8')) as StoredCredentials;
  } catch {
    return undefined;
  }
}
