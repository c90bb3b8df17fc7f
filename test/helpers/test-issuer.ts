// A bare OIDC issuer for tests on 127.0.0.1:0 (discovery + JWKS) whose keys the test
// holds, to sign any token, including the malformed and hostile ones.

import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export interface TestIssuer {
  readonly issuer: string;
  readonly kid: string;
  readonly publicJwk: JWK;
  sign(claims: JWTPayload, options?: { alg?: string; kid?: string; key?: CryptoKey; omit?: string[] }): Promise<string>;
  /** Adds a new key to the JWKS and signs with it from now on. */
  rotate(): Promise<void>;
  jwksFetches(): number;
  /** While down, discovery and the JWKS answer 503 (an IdP in an outage). */
  setDown(down: boolean): void;
  close(): Promise<void>;
}

export async function startTestIssuer(): Promise<TestIssuer> {
  let keys: { kid: string; privateKey: CryptoKey; publicJwk: JWK }[] = [];
  const addKey = async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const kid = randomBytes(6).toString('hex');
    keys = [...keys, { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } }];
  };
  await addKey();
  let fetches = 0;
  let down = false;
  const server: Server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (down) {
      res.statusCode = 503;
      res.end('{}');
      return;
    }
    if (req.url === '/.well-known/openid-configuration') res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
    else if (req.url === '/jwks') {
      fetches++;
      res.end(JSON.stringify({ keys: keys.map((k) => k.publicJwk) }));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const latest = () => keys[keys.length - 1]!;
  return {
    issuer,
    get kid() {
      return latest().kid;
    },
    get publicJwk() {
      return latest().publicJwk;
    },
    async sign(claims, options = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload: JWTPayload = { iss: issuer, iat: now, exp: now + 300, ...claims };
      for (const name of options.omit ?? []) delete payload[name];
      return new SignJWT(payload)
        .setProtectedHeader({ alg: options.alg ?? 'RS256', kid: options.kid ?? latest().kid, typ: 'at+jwt' })
        .sign(options.key ?? latest().privateKey);
    },
    rotate: addKey,
    jwksFetches: () => fetches,
    setDown: (value) => {
      down = value;
    },
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
