import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { dir, parse, issuesOf, connection } from '../helpers/config-parse.js';

describe('parseConfig: secret references', () => {
  test('${VAR} in a secret resolves from the given env, not process.env', () => {
    const config = parse(`connections:\n${connection(`credential: { header: api-key, scheme: '', secret: '\${AZURE_KEY}' }`)}`, { AZURE_KEY: 'az-123' });
    assert.deepEqual(config.connections[0]!.credential, { header: 'api-key', scheme: '', secret: 'az-123' });
  });

  test('file: secrets are read relative to the config directory, trailing newline stripped', () => {
    mkdirSync(join(dir, 'secrets'), { recursive: true });
    writeFileSync(join(dir, 'secrets/openai.key'), 'sk-from-file\n');
    writeFileSync(join(dir, 'secrets/crlf.key'), 'sk-crlf\r\n');
    writeFileSync(join(dir, 'secrets/two.key'), 'sk-two\n\n');
    writeFileSync(join(dir, 'abs.key'), 'sk-abs');
    const source = `connections:\n${connection("credential: { secret: 'file:secrets/openai.key' }")}  - { name: b, type: http, target: 'http://x', access: { groups: [ml] }, credential: { secret: 'file:./secrets/crlf.key' } }\n  - { name: c, type: http, target: 'http://x', access: { groups: [ml] }, credential: { secret: 'file:${join(dir, 'abs.key')}' } }\n  - { name: d, type: http, target: 'http://x', access: { groups: [ml] }, credential: { secret: 'file:secrets/two.key' } }\n`;
    const secrets = parse(source).connections.map((c) => c.credential?.secret);
    // Only ONE trailing newline is stripped: a file that really ends in a blank line keeps it.
    assert.deepEqual(secrets, ['sk-from-file', 'sk-crlf', 'sk-abs', 'sk-two\n']);
  });

  test('an unreadable file: secret is reported with the resolved path and errno code', () => {
    assert.deepEqual(issuesOf(`connections:\n${connection("credential: { secret: 'file:missing.key' }")}`), [
      `connections[0].credential.secret: cannot read ${join(dir, 'missing.key')}: ENOENT`,
    ]);
    assert.deepEqual(issuesOf(`connections:\n${connection("credential: { secret: 'file:.' }")}`), [
      `connections[0].credential.secret: cannot read ${dir}: EISDIR`,
    ]);
  });

  test('an empty file: secret is refused, as an empty variable is (a masking hash key among them)', () => {
    writeFileSync(join(dir, 'empty.key'), '\n');
    assert.deepEqual(issuesOf(`masking:\n  profiles:\n    a: { operator: hash, hashKey: 'file:empty.key' }\nconnections:\n${connection("credential: { secret: 'file:empty.key' }")}`), [
      `connections[0].credential.secret: ${join(dir, 'empty.key')} is empty (a secret must not be)`,
      `masking.profiles.a.hashKey: ${join(dir, 'empty.key')} is empty (a secret must not be)`,
    ]);
  });

  test('${VAR} is expanded inside a target URL (and other plain strings), even more than once', () => {
    const config = parse(`gateway: { publicUrl: 'https://\${PUBLIC_HOST}' }\nconnections:\n  - { name: demo, type: openai, target: 'http://\${HOST}:\${PORT}/v1', access: { groups: [ml] } }\n`, {
      HOST: '10.0.0.7',
      PORT: '8000',
      PUBLIC_HOST: 'gw.example',
    });
    assert.equal(config.connections[0]!.target, 'http://10.0.0.7:8000/v1');
    assert.equal(config.gateway.publicUrl, 'https://gw.example');
  });

  test('${VAR} is expanded in the values a deployment sets per environment: IdP client, audiences, issuers, SAML ids, writer id, database role', () => {
    const env = { CLIENT: 'gh-prod', AUD: 'api://gh', SP: 'https://gh.example/saml', IDP: 'https://idp.example', POD: 'gh-7f9c', ROLE: 'gh_reader', PW: 'pw', CS: 'cs' };
    const config = parse(
      [
        'identity:',
        '  oidc: { issuers: [{ name: corp, issuer: "https://idp.example", audience: ["${AUD}", other] }] }',
        '  gatewayTokens: { issuer: "${SP}", audience: "${AUD}" }',
        '  login: { issuer: corp, clientId: "${CLIENT}", clientSecret: "${CS}", redirectUri: "https://gh.example/auth/callback" }',
        '  saml: { entityId: "${SP}", acsUrl: "https://gh.example/acs", idpSsoUrl: "https://idp.example/sso", idpIssuer: "${IDP}/metadata", idpCert: "${CS}" }',
        'audit: { writerId: "${POD}/1" }',
        'connections:',
        '  - { name: pg, type: postgres, listen: { port: 0 }, allowPlaintext: true, target: "postgres://db/x", credential: { user: "${ROLE}", secret: "${PW}" }, access: { groups: [g] } }',
        '',
      ].join('\n'),
      env,
    );
    assert.deepEqual(config.identity.oidc.issuers[0]!.audience, ['api://gh', 'other']);
    assert.deepEqual([config.identity.gatewayTokens.issuer, config.identity.gatewayTokens.audience], ['https://gh.example/saml', 'api://gh']);
    assert.equal(config.identity.login!.clientId, 'gh-prod');
    assert.deepEqual([config.identity.saml!.entityId, config.identity.saml!.idpIssuer], ['https://gh.example/saml', 'https://idp.example/metadata']);
    assert.equal(config.audit.writerId, 'gh-7f9c/1');
    assert.equal((config.connections[0] as { credential?: { user: string } }).credential!.user, 'gh_reader');
    assert.deepEqual(issuesOf('identity: { gatewayTokens: { audience: "${UNSET_AUD}" } }\n'), ['identity.gatewayTokens.audience: environment variable UNSET_AUD is not set']);
  });

  test('a listener TLS cert and key are secrets too', () => {
    assert.deepEqual(issuesOf('gateway: { tls: { cert: "-----BEGIN", key: "${TLS_KEY}" } }\n'), [
      'gateway.tls.cert: a secret must be a reference (${ENV_VAR} or file:/path), not a literal value',
      'gateway.tls.key: environment variable TLS_KEY is not set',
    ]);
  });

  test("secrets: 'store-only' leaves connection secrets empty but resolves the postgres store url", () => {
    const source = `store: { postgres: { url: '\${DATABASE_URL}', schema: gatehouse } }\nconnections:\n${connection(`credential: { secret: '\${MISSING_KEY}' }`)}  - { name: lit, type: http, target: 'http://x', access: { groups: [ml] }, credential: { secret: not-a-reference }, tls: { ca: 'file:nowhere.pem' } }\n`;
    const env = { DATABASE_URL: 'postgres://gh:pw@db:5432/gh' };
    const config = parse(source, env, { secrets: 'store-only' });
    assert.deepEqual(config.store, { postgres: { url: 'postgres://gh:pw@db:5432/gh', schema: 'gatehouse' } });
    assert.equal(config.connections[0]!.credential?.secret, '');
    assert.equal(config.connections[1]!.credential?.secret, '');
    assert.equal(config.connections[1]!.tls?.ca, '');
    // The same config with all secrets resolved is refused.
    assert.deepEqual(issuesOf(source, env), [
      'connections[0].credential.secret: environment variable MISSING_KEY is not set',
      'connections[1].credential.secret: a secret must be a reference (${ENV_VAR} or file:/path), not a literal value',
      `connections[1].tls.ca: cannot read ${join(dir, 'nowhere.pem')}: ENOENT`,
    ]);
  });

  test("secrets: 'store-only' still refuses a postgres url that does not resolve", () => {
    assert.deepEqual(issuesOf("store: { postgres: { url: '${DATABASE_URL}' } }\n", {}, { secrets: 'store-only' }), ['store.postgres.url: environment variable DATABASE_URL is not set']);
  });

  // A store or Redis variable holding something else than its URL (the password alone, a
  // misquoted URL) used to pass `config check` and reach the client library, which put it
  // in its error: `getaddrinfo ENOTFOUND hunter2pw` in the log and the exchange records.
  test('a postgres or redis url secret must resolve to a URL of its scheme, and the message never shows the value', () => {
    const store = "store: { postgres: { url: '${DATABASE_URL}' } }\n";
    const redis = "policy:\n  limits:\n    store: redis\n    redis: { url: '${REDIS_URL}' }\n";
    const hidden = '; the value is not shown, as it may hold a password)';
    assert.deepEqual(issuesOf(store, { DATABASE_URL: 'hunter2pw' }), [`store.postgres.url: must resolve to a postgres:// or postgresql:// URL, e.g. postgres://gatehouse@db:5432/gatehouse (it is not a URL${hidden}`]);
    assert.deepEqual(issuesOf(store, { DATABASE_URL: 'mysql://u:hunter2pw@db/x' }), [`store.postgres.url: must resolve to a postgres:// or postgresql:// URL, e.g. postgres://gatehouse@db:5432/gatehouse (its scheme is "mysql"${hidden}`]);
    assert.deepEqual(issuesOf(store, { DATABASE_URL: 'hunter2pw' }, { secrets: 'store-only' }).length, 1);
    assert.deepEqual(issuesOf(redis, { REDIS_URL: 'hunter2pw' }), [`policy.limits.redis.url: must resolve to a redis:// or rediss:// URL, e.g. redis://:password@cache:6379/0 (it is not a URL${hidden}`]);
    assert.deepEqual(issuesOf(redis, { REDIS_URL: 'cache.internal:6379' }), [`policy.limits.redis.url: must resolve to a redis:// or rediss:// URL, e.g. redis://:password@cache:6379/0 (its scheme is "cache.internal"${hidden}`]);
    assert.deepEqual(parse(store, { DATABASE_URL: 'postgresql://gh:pw@db/gh' }).store, { postgres: { url: 'postgresql://gh:pw@db/gh' } });
    assert.equal(parse(redis, { REDIS_URL: 'rediss://:pw@cache:6380/1' }).policy.limits.redis?.url, 'rediss://:pw@cache:6380/1');
  });

  // `gatehouse keys create` from a bastion failed "policy.limits.redis.url: environment
  // variable REDIS_URL is not set": the store commands never use Redis.
  test("secrets: 'store-only' does not need the Redis URL", () => {
    const config = parse("store: { postgres: { url: '${DATABASE_URL}' } }\npolicy:\n  limits:\n    store: redis\n    redis: { url: '${REDIS_URL}' }\n", { DATABASE_URL: 'postgres://gh@db/gh' }, { secrets: 'store-only' });
    assert.equal(config.policy.limits.redis?.url, '');
  });
});

describe('loadConfig', () => {
  test('reads the file and resolves paths against its directory', () => {
    const sub = join(dir, 'etc');
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, 'api.key'), 'sk-loaded\n');
    const path = join(sub, 'gatehouse.yaml');
    writeFileSync(path, `store: { sqlite: { path: db.sqlite } }\nconnections:\n${connection("credential: { secret: 'file:api.key' }")}`);
    const config = loadConfig(path, {});
    assert.deepEqual(config.store, { sqlite: { path: join(sub, 'db.sqlite') } });
    assert.equal(config.connections[0]!.credential?.secret, 'sk-loaded');
    assert.ok(Object.isFrozen(config));
  });

  test('a missing file is a ConfigError naming the file', () => {
    const path = join(dir, 'nope.yaml');
    assert.throws(() => loadConfig(path, {}), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.issues, ['(file): cannot read: ENOENT']);
      assert.equal(error.message, `invalid config ${path}:\n  (file): cannot read: ENOENT`);
      return true;
    });
  });
});
