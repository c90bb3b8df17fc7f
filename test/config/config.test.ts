import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { ConfigError, formatPath, loadConfig, parseConfig, parseDuration, parseIsoTime, parseSize, type GatehouseConfig } from '../../src/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The config file the sources below pretend to come from. */
const file = join(dir, 'gatehouse.yaml');

function parse(source: string, env: NodeJS.ProcessEnv = {}, options: { secrets?: 'all' | 'store-only' } = {}): GatehouseConfig {
  return parseConfig(source, file, env, options);
}

/** Parses, expecting a ConfigError; returns its issues. */
function issuesOf(source: string, env: NodeJS.ProcessEnv = {}, options: { secrets?: 'all' | 'store-only' } = {}): readonly string[] {
  try {
    parse(source, env, options);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.name, 'ConfigError');
    return error.issues;
  }
  assert.fail('expected the config to be refused');
}

/** One connection, as a YAML flow mapping, with overrides spliced in. */
function connection(fields: string = ''): string {
  return `  - { name: demo, type: openai, target: 'http://127.0.0.1:9000/v1', access: { groups: [ml] }${fields ? `, ${fields}` : ''} }\n`;
}

const minimal = `connections:\n${connection()}`;
const ed25519Pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

describe('parseConfig: defaults', () => {
  test('a minimal config gets the documented defaults', () => {
    const config = parse(minimal);
    assert.deepEqual(config.gateway, { listen: { host: '127.0.0.1', port: 8080 }, maxRequestBody: 10 * 1024 * 1024, maxResponseBody: 512 * 1024 * 1024, maxConnections: 4096, maxConnectionsPerClient: 256 });
    assert.deepEqual(config.admin, { enabled: true, listen: { host: '127.0.0.1', port: 8081 }, groups: ['gatehouse-admins'], maxConnections: 256, maxConnectionsPerClient: 64 });
    assert.deepEqual(config.store, { sqlite: { path: join(dir, 'data/gatehouse.db') } });
    assert.deepEqual(config.recording, { maxBodyBytes: 256 * 1024, enabled: true });
    assert.deepEqual(config.audit, {
      keyFile: join(dir, 'data/audit-signing-key.pem'),
      checkpoint: { every: 1000, interval: 60_000 },
      progress: { interval: 250, bytes: 64 * 1024 },
      sinks: [],
      raw: { enabled: false, revealGroups: [] },
    });
    assert.deepEqual(config.log, { level: 'info' });
    assert.equal(config.connections.length, 1);
    const demo = config.connections[0]!;
    assert.equal(demo.name, 'demo');
    assert.equal(demo.type, 'openai');
    assert.equal(demo.target, 'http://127.0.0.1:9000/v1');
    assert.equal(demo.credential, undefined);
    assert.equal(demo.tls, undefined);
    assert.deepEqual(demo.timeouts, { connect: 5000, headers: 60000, body: 300000 });
    assert.deepEqual(demo.limits, {});
    assert.deepEqual(demo.access, { groups: ['ml'] });
  });

  test('audit: raw recording needs a key, and sink and raw secrets must be references', () => {
    assert.deepEqual(issuesOf('audit: { raw: { enabled: true } }\n'), ['audit.raw.key: audit.raw.key is required when audit.raw.enabled is true']);
    const issues = issuesOf('audit:\n  raw: { enabled: true, key: plain-key }\n  sinks: [{ type: webhook, url: "https://siem.example/in", secret: literal }]\n');
    assert.ok(issues.some((i) => i.startsWith('audit.raw.key: a secret must be a reference')), issues.join('\n'));
    assert.ok(issues.some((i) => i.startsWith('audit.sinks[0].secret: a secret must be a reference')), issues.join('\n'));
    const config = parse('audit:\n  signingKey: "${SK}"\n  checkpoint: { every: 10, interval: 5s }\n  sinks: [{ type: stdout }, { type: file, path: logs/audit.jsonl }]\n', { SK: ed25519Pem });
    assert.equal(config.audit.signingKey, ed25519Pem);
    assert.equal(config.audit.keyFile, join(dir, 'data/audit-signing-key.pem'), 'beside the default SQLite file');
    assert.equal(parse('store: { sqlite: { path: /var/lib/gh/g.db } }\n').audit.keyFile, '/var/lib/gh/audit-signing-key.pem', 'the generated key lives with the data');
    assert.equal(parse('store: { postgres: { url: "${PG}" } }\n', { PG: 'postgres://x/y' }).audit.keyFile, join(dir, 'data/audit-signing-key.pem'));
    assert.equal(parse('audit: { keyFile: keys/a.pem }\n').audit.keyFile, join(dir, 'keys/a.pem'));
    // The Gatehouse-token key too: it defaulted to ./.gatehouse-data/ under the working
    // directory with PostgreSQL, a new key for every directory the gateway started from.
    assert.equal(parse('store: { postgres: { url: "${PG}" } }\n', { PG: 'postgres://x/y' }).identity.gatewayTokens.keyFile, join(dir, 'data/gateway-signing-key.pem'));
    assert.equal(parse('store: { sqlite: { path: /var/lib/gh/g.db } }\n').identity.gatewayTokens.keyFile, '/var/lib/gh/gateway-signing-key.pem');
    assert.equal(parse('identity: { gatewayTokens: { keyFile: keys/t.pem } }\n').identity.gatewayTokens.keyFile, join(dir, 'keys/t.pem'));
    assert.deepEqual(config.audit.checkpoint, { every: 10, interval: 5000 });
    assert.deepEqual(config.audit.sinks, [{ type: 'stdout' }, { type: 'file', path: join(dir, 'logs/audit.jsonl') }]);
    // A webhook URL from the environment, as any other string: it was refused as "not a URL".
    const fromEnv = parse('audit:\n  sinks: [{ type: webhook, url: "${SIEM_URL}/ingest", secret: "${HMAC}" }]\n', { SIEM_URL: 'https://siem.example', HMAC: 'k' });
    assert.equal((fromEnv.audit.sinks[0] as { url: string }).url, 'https://siem.example/ingest');
    // A user:password in it is refused: fetch will not send it, and printed it in every retry's log line.
    const userinfo = issuesOf('audit:\n  sinks: [{ type: webhook, url: "https://ops:s3cret@siem.example/in", secret: "${HMAC}" }]\n', { HMAC: 'k' });
    assert.deepEqual(userinfo, ["audit.sinks[0].url: must not carry a user or password: the body is signed with the sink's secret"]);
  });

  test('audit: the signing key and the raw key are checked, so config check refuses what start would fail on', () => {
    const rsaPem = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    assert.deepEqual(issuesOf('audit: { signingKey: "${SK}" }\n', { SK: rsaPem }), ['audit.signingKey: must be an Ed25519 private key (PKCS#8 PEM): audit signing key must be Ed25519, not rsa']);
    assert.deepEqual(issuesOf('audit: { raw: { enabled: true, key: "${RK}" } }\n', { RK: 'too-short' }), ['audit.raw.key: must be 32 bytes, as 64 hex digits or base64 (e.g. openssl rand -hex 32)']);
    assert.equal(parse('audit: { raw: { enabled: true, key: "${RK}" } }\n', { RK: 'ab'.repeat(32) }).audit.raw.key, 'ab'.repeat(32));
    // A store-only command does not resolve the raw key, and does not check it.
    assert.equal(parse('audit: { raw: { enabled: true, key: "${RK}" } }\n', {}, { secrets: 'store-only' }).audit.raw.enabled, true);
  });

  test('a listener given without a port keeps the documented default port', () => {
    const config = parse('gateway: { listen: { host: 0.0.0.0 } }\nadmin: { listen: { host: 10.0.0.5 } }\n');
    assert.deepEqual(config.gateway.listen, { host: '0.0.0.0', port: 8080 });
    assert.deepEqual(config.admin.listen, { host: '10.0.0.5', port: 8081 });
    assert.deepEqual(parse('gateway: { listen: { port: 9443 } }\nadmin: { listen: {} }\n').gateway.listen, { host: '127.0.0.1', port: 9443 });
    assert.deepEqual(parse('admin: { listen: {} }\n').admin.listen, { host: '127.0.0.1', port: 8081 });
  });

  test('credential header and scheme default to authorization / Bearer', () => {
    const config = parse(`connections:\n${connection(`credential: { secret: '\${KEY}' }`)}`, { KEY: 'sk-1' });
    assert.deepEqual(config.connections[0]!.credential, { header: 'authorization', scheme: 'Bearer', secret: 'sk-1' });
  });

  test('an empty file is a valid config with defaults and no connections', () => {
    for (const source of ['', '\n', '# only a comment\n', '---\n']) {
      const config = parse(source);
      assert.deepEqual(config.connections, [], JSON.stringify(source));
      assert.deepEqual(config.gateway.listen, { host: '127.0.0.1', port: 8080 });
      assert.deepEqual(config.store, { sqlite: { path: join(dir, 'data/gatehouse.db') } });
    }
  });

  test('a relative sqlite path is resolved against the config file directory, an absolute one kept', () => {
    assert.deepEqual(parse('store: { sqlite: { path: ./db/g.db } }\n').store, { sqlite: { path: join(dir, 'db/g.db') } });
    assert.deepEqual(parse('store: { sqlite: { path: ../up.db } }\n').store, { sqlite: { path: join(dir, '../up.db') } });
    assert.deepEqual(parse('store: { sqlite: { path: /var/lib/g.db } }\n').store, { sqlite: { path: '/var/lib/g.db' } });
    assert.deepEqual(parse(`store: { sqlite: { path: '\${DATA}/g.db' } }\n`, { DATA: 'state' }).store, { sqlite: { path: join(dir, 'state/g.db') } });
  });

  test('human units are converted: durations to ms, sizes to bytes', () => {
    const config = parse(`gateway: { maxRequestBody: 1MiB, maxResponseBody: 2GB }\nrecording: { maxBodyBytes: 512KiB }\nconnections:\n${connection('timeouts: { connect: 250ms, headers: 1.5s, body: 5m }, limits: { maxRequestBody: 1000, maxResponseBody: 1kb }')}`);
    assert.equal(config.gateway.maxRequestBody, 1024 * 1024);
    assert.equal(config.gateway.maxResponseBody, 2_000_000_000);
    assert.equal(config.recording.maxBodyBytes, 512 * 1024);
    assert.deepEqual(config.connections[0]!.timeouts, { connect: 250, headers: 1500, body: 300_000 });
    assert.deepEqual(config.connections[0]!.limits, { maxRequestBody: 1000, maxResponseBody: 1000 });
  });

  test('the result is deeply frozen', () => {
    const config = parse(`connections:\n${connection(`credential: { secret: '\${KEY}' }`)}`, { KEY: 'sk-1' });
    for (const value of [config, config.gateway, config.gateway.listen, config.admin, config.admin.groups, config.store, config.connections, config.connections[0], config.connections[0]!.access, config.connections[0]!.access.groups, config.connections[0]!.timeouts, config.connections[0]!.credential]) {
      assert.ok(Object.isFrozen(value), `not frozen: ${JSON.stringify(value)}`);
    }
    // ESM is strict mode: writing to a frozen object throws.
    assert.throws(() => {
      (config.gateway.listen as { port: number }).port = 1;
    }, TypeError);
    assert.throws(() => {
      (config.connections as unknown as unknown[]).push({});
    }, TypeError);
    assert.equal(config.gateway.listen.port, 8080);
  });
});

describe('parseConfig: every error names its dotted path', () => {
  const cases: ReadonlyArray<{ name: string; source: string; env?: NodeJS.ProcessEnv; issues: readonly string[] }> = [
    {
      name: 'target that is not http(s)',
      source: `connections:\n${connection()}  - { name: other, type: openai, target: 'ftp://files.example', access: { groups: [ml] } }\n`,
      issues: ['connections[1].target: must be an http:// or https:// URL'],
    },
    {
      // A literal secret: never echoed back in the issue.
      name: 'target with a user and password in it',
      source: `connections:\n  - { name: demo, type: http, target: 'https://svc:hunter2-wombat@api.internal/v1', access: { groups: [ml] } }\n`,
      issues: ['connections[0].target: must not carry a user or password: put the credential in credential.secret (e.g. scheme: Basic)'],
    },
    {
      name: 'target that is not a URL',
      source: `connections:\n  - { name: demo, type: openai, target: 'not a url', access: { groups: [ml] } }\n`,
      issues: ['connections[0].target: must be an http:// or https:// URL'],
    },
    {
      name: 'unknown key',
      source: 'gateway:\n  lisen: { port: 9000 }\n',
      issues: ['gateway: unknown key "lisen"'],
    },
    {
      name: 'several unknown keys in one object',
      source: 'gateway:\n  lisen: { port: 9000 }\n  prot: 1\n',
      issues: ['gateway: unknown keys "lisen", "prot"'],
    },
    {
      name: 'unknown top-level key',
      source: 'conections: []\n',
      issues: ['(root): unknown key "conections"'],
    },
    {
      name: 'duplicate connection name',
      source: `connections:\n${connection()}  - { name: other, type: http, target: 'http://x', access: { groups: [ml] } }\n  - { name: demo, type: http, target: 'http://y', access: { groups: [ml] } }\n`,
      issues: ['connections[2].name: duplicate connection name "demo" (also connections[0])'],
    },
    {
      name: 'bad type enum',
      source: `connections:\n  - { name: demo, type: grpc, target: 'http://x', access: { groups: [ml] } }\n`,
      issues: ['connections[0].type: "grpc" is not one of openai, http, postgres'],
    },
    {
      // zod's "Invalid discriminator value" did not say the key is required.
      name: 'missing type',
      source: `connections:\n  - { name: demo, target: 'http://x', access: { groups: [ml] } }\n`,
      issues: ['connections[0].type: is required: one of openai, http, postgres'],
    },
    {
      name: 'audit sink without a known type',
      source: 'audit:\n  sinks: [{ type: syslog }, { path: /var/log/a.jsonl }]\n',
      issues: ['audit.sinks[0].type: "syslog" is not one of file, stdout, webhook', 'audit.sinks[1].type: is required: one of file, stdout, webhook'],
    },
    {
      // Not "does not match any accepted form": the cause, at its path (one or a list).
      name: 'saml idpCert that cannot be read',
      source: 'identity:\n  saml: { entityId: sp, acsUrl: "https://a.example/acs", idpSsoUrl: "https://idp.example/sso", idpIssuer: idp, idpCert: file:/nonexistent/idp.pem }\n',
      issues: ['identity.saml.idpCert: cannot read /nonexistent/idp.pem: ENOENT'],
    },
    {
      name: 'saml idpCert list with an unset variable and a literal',
      source: 'identity:\n  saml: { entityId: sp, acsUrl: "https://a.example/acs", idpSsoUrl: "https://idp.example/sso", idpIssuer: idp, idpCert: ["${IDP_CERT_UNSET}", "-----BEGIN CERTIFICATE-----"] }\n',
      issues: ['identity.saml.idpCert[0]: environment variable IDP_CERT_UNSET is not set', 'identity.saml.idpCert[1]: a secret must be a reference (${ENV_VAR} or file:/path), not a literal value'],
    },
    {
      name: 'bad duration text',
      source: `connections:\n${connection('timeouts: { connect: 5 minutes }')}`,
      issues: ['connections[0].timeouts.connect: "5 minutes" is not a duration (use e.g. 500ms, 30s, 5m, or milliseconds)'],
    },
    {
      name: 'negative duration number',
      source: `connections:\n${connection('timeouts: { body: -1 }')}`,
      issues: ['connections[0].timeouts.body: "-1" is not a duration (use e.g. 500ms, 30s, 5m, or milliseconds)'],
    },
    {
      // PostgreSQL's statement_timeout 0 is "no limit"; here it cancelled every statement at once.
      name: 'a postgres statementTimeout of 0, or beyond what a timer holds',
      source: 'connections:\n  - { name: pg, type: postgres, listen: { port: 0 }, allowPlaintext: true, target: "postgres://db/x", credential: { user: u, secret: "${PW}" }, access: { groups: [g] }, limits: { statementTimeout: 0 }, timeouts: { login: 30d, connect: 0 } }\n',
      env: { PW: 'pw' },
      issues: [
        'connections[0].timeouts.connect: must be at least 1ms: with 0 every login to the database would time out at once',
        'connections[0].timeouts.login: must be at most 24d (2147483647 ms): a longer timer fires at once',
        'connections[0].limits.statementTimeout: must be at least 1ms: leave statementTimeout out for no limit (0 would cancel every statement at once)',
      ],
    },
    {
      name: 'an agents heartbeat of 0, a queue timeout beyond a timer, an approvals poll of 0',
      source: 'agents: { listen: { port: 0 }, tls: { cert: "${C}", key: "${K}" }, heartbeat: 0, queueTimeout: 25d }\napprovals: { pollInterval: 0 }\n',
      env: { C: 'c', K: 'k' },
      issues: [
        'approvals.pollInterval: must be at least 10ms: a held request re-reads its review from the store this often (0 would query it without pause)',
        'agents.heartbeat: must be at least 100ms: a shorter heartbeat floods every tunnel with frames (and 0 drops every agent)',
        'agents.queueTimeout: must be at most 24d (2147483647 ms): a longer timer fires at once',
      ],
    },
    {
      // Top-level sections left empty mean their defaults; a nested key left empty is null.
      name: 'a nested key with nothing under it',
      source: 'gateway:\n  tls:\naudit:\n  checkpoint:\nmasking:\n  profiles:\n    pii:\n',
      issues: [
        'gateway.tls: is empty (a key with nothing under it): give its keys, write {} for its defaults, or leave it out',
        'audit.checkpoint: is empty (a key with nothing under it): give its keys, write {} for its defaults, or leave it out',
        'masking.profiles.pii: is empty (a key with nothing under it): give its keys, write {} for its defaults, or leave it out',
      ],
    },
    {
      // AbortSignal.timeout(0): every fetch and delivery aborted at once.
      name: 'a JWKS fetch timeout or a webhook sink timeout of 0',
      source: 'identity: { oidc: { issuers: [{ name: corp, issuer: "https://idp.example", audience: gh, jwks: { timeout: 0 } }] } }\naudit: { sinks: [{ type: webhook, url: "https://siem.example", secret: "${S}", timeout: 0 }] }\n',
      env: { S: 's' },
      issues: [
        'audit.sinks[0].timeout: must be at least 1ms: with 0 every delivery is aborted at once, and retried forever',
        'identity.oidc.issuers[0].jwks.timeout: must be at least 1ms: with 0 every discovery and JWKS fetch is aborted at once',
      ],
    },
    {
      // A throttle that cannot work (a limit of 0 refused every address at once) or an exempt entry that exempts nothing.
      name: 'an authThrottle limit of 0, a window under 1s, an exempt entry that is no address or CIDR',
      source: 'identity: { authThrottle: { exempt: [not-an-ip, 10.0.0.0/33, "fd00::/8", 192.0.2.7], perAddress: { limit: 0, window: 10ms }, perAccount: { limit: -1 } } }\n',
      issues: [
        'identity.authThrottle.perAddress.limit: must be at least 1 (to turn throttling off, set authThrottle.enabled: false)',
        'identity.authThrottle.perAddress.window: must be at least 1s',
        'identity.authThrottle.perAccount.limit: must be at least 0 (0: not counted)',
        'identity.authThrottle.exempt[0]: must be an IP address or a CIDR block (10.0.0.0/8, fd00::/8)',
        'identity.authThrottle.exempt[1]: must be an IP address or a CIDR block (10.0.0.0/8, fd00::/8)',
      ],
    },
    {
      // config check said valid; start failed with "address in use".
      name: 'two listeners on one port',
      source: 'gateway: { listen: { host: 0.0.0.0, port: 8443 } }\nadmin: { listen: { port: 6432 } }\nconnections:\n  - { name: pg, type: postgres, listen: { port: 8443 }, allowPlaintext: true, target: "postgres://db/x", credential: { user: u, secret: "${PW}" }, access: { groups: [g] } }\n  - { name: pg2, type: postgres, listen: { host: 127.0.0.2, port: 6432 }, allowPlaintext: true, target: "postgres://db/x", credential: { user: u, secret: "${PW}" }, access: { groups: [g] } }\n  - { name: pg3, type: postgres, listen: { port: 6432 }, allowPlaintext: true, target: "postgres://db/x", credential: { user: u, secret: "${PW}" }, access: { groups: [g] } }\n',
      env: { PW: 'pw' },
      issues: [
        'connections[0].listen.port: 8443 is also the port of gateway.listen (0.0.0.0): two listeners cannot share it',
        'connections[2].listen.port: 6432 is also the port of admin.listen (127.0.0.1): two listeners cannot share it',
      ],
    },
    {
      name: 'a masking profile name that is not lower-case',
      source: 'masking:\n  profiles:\n    PII: { operator: redact }\n',
      issues: ['masking.profiles.PII: is not a valid name: profile names are lower-case letters, digits, "-" or "_"'],
    },
    {
      name: 'a publicUrl without its scheme',
      source: 'gateway: { publicUrl: "gatehouse.example.com:8443" }\n',
      issues: ['gateway.publicUrl: must be an http:// or https:// URL'],
    },
    {
      name: 'bad size text',
      source: 'gateway: { maxRequestBody: 10 megs }\n',
      issues: ['gateway.maxRequestBody: "10 megs" is not a size (use e.g. 512KiB, 10MiB, or bytes)'],
    },
    {
      name: 'an OIDC issuer or JWKS over plain http to another host',
      source: 'identity:\n  oidc:\n    issuers:\n      - { name: corp, issuer: http://idp.corp.example, audience: gatehouse }\n      - { name: ci, issuer: https://ci.example, audience: gatehouse, discovery: false, jwksUri: http://ci.example/jwks }\n',
      issues: [
        'identity.oidc.issuers[0].issuer: http:// to another host lets anyone on the network path replace the signing keys and forge any identity: use https://, or set allowInsecureHttp: true for a network you trust',
        'identity.oidc.issuers[1].jwksUri: http:// to another host lets anyone on the network path replace the signing keys and forge any identity: use https://, or set allowInsecureHttp: true for a network you trust',
      ],
    },
    {
      // The plain-http check must not throw on it: the URL check reports it.
      name: 'an OIDC issuer that is not a URL',
      source: 'identity:\n  oidc:\n    issuers:\n      - { name: corp, issuer: "http:////", audience: gatehouse }\n',
      issues: ['identity.oidc.issuers[0].issuer: must be an http:// or https:// URL'],
    },
    {
      name: 'missing env var in a secret',
      source: `connections:\n${connection(`credential: { secret: '\${X}' }`)}`,
      issues: ['connections[0].credential.secret: environment variable X is not set'],
    },
    {
      name: 'empty env var in a secret',
      source: `connections:\n${connection(`credential: { secret: '\${X}' }`)}`,
      env: { X: '' },
      issues: ['connections[0].credential.secret: environment variable X is empty (a secret must not be)'],
    },
    {
      name: 'literal secret',
      source: `connections:\n${connection('credential: { secret: sk-live-123 }')}`,
      issues: ['connections[0].credential.secret: a secret must be a reference (${ENV_VAR} or file:/path), not a literal value'],
    },
    {
      name: 'secret with text around the reference',
      source: `connections:\n${connection(`credential: { secret: 'Bearer \${KEY}' }`)}`,
      env: { KEY: 'sk-1' },
      issues: ['connections[0].credential.secret: a secret must be a reference (${ENV_VAR} or file:/path), not a literal value'],
    },
    {
      name: 'missing env var in a target URL',
      source: `connections:\n  - { name: demo, type: openai, target: 'http://\${UPSTREAM_HOST}/v1', access: { groups: [ml] } }\n`,
      issues: ['connections[0].target: environment variable UPSTREAM_HOST is not set'],
    },
    {
      // Under trust authentication PostgreSQL takes no password, and "is required" alone did not say what to give.
      name: 'postgres credential without its secret',
      source: `connections:\n  - { name: db, type: postgres, listen: { port: 6543 }, allowPlaintext: true, target: 'postgres://127.0.0.1:5432/app', credential: { user: app }, access: { groups: [ml] } }\n`,
      issues: ['connections[0].credential.secret: is required: the credential the gateway sends to the target, by reference ("${ENV_VAR}" or file:/path); for a postgres connection the database password (under trust authentication any non-empty value)'],
    },
    {
      name: 'missing required fields',
      source: 'connections:\n  - { name: demo, type: openai }\n',
      issues: ['connections[0].target: is required', 'connections[0].access: is required'],
    },
    {
      name: 'bad connection name and empty group list',
      source: `connections:\n  - { name: Demo, type: openai, target: 'http://x', access: { groups: [] } }\n`,
      issues: ['connections[0].name: must be lower-case letters, digits, "-" or "_" (at most 63)', 'connections[0].access.groups: Too small: expected array to have >=1 items'],
    },
    {
      name: 'listen host that is not an IP, port out of range',
      source: 'gateway: { listen: { host: example.com, port: 70000 } }\n',
      issues: ['gateway.listen.host: must be an IP address or localhost', 'gateway.listen.port: Too big: expected number to be <=65535'],
    },
    {
      name: 'a postgres listener without a port (it has no default)',
      source: `connections:\n  - { name: pg, type: postgres, listen: { host: 127.0.0.1 }, allowPlaintext: true, target: 'postgres://db:5432/app', credential: { user: gh, secret: '\${PGPW}' }, access: { groups: [ml] } }\n`,
      env: { PGPW: 'pw' },
      issues: ['connections[0].listen.port: is required'],
    },
    {
      name: 'store that is neither sqlite nor postgres',
      source: 'store: { mysql: { url: x } }\n',
      issues: ['store: unknown key "mysql"', 'store: needs exactly one of "sqlite" or "postgres"'],
    },
    {
      name: 'store with both sqlite and postgres',
      source: "store: { sqlite: { path: g.db }, postgres: { url: '${PG}' } }\n",
      env: { PG: 'postgres://db/gh' },
      issues: ['store: needs exactly one of "sqlite" or "postgres"'],
    },
    {
      // Not "store: does not match any accepted form": the cause, at its path.
      name: 'a postgres store whose url variable is not set',
      source: "store: { postgres: { url: '${GH_DATABASE_URL}' } }\n",
      issues: ['store.postgres.url: environment variable GH_DATABASE_URL is not set'],
    },
    {
      name: 'a postgres store url that is a literal',
      source: "store: { postgres: { url: 'postgres://gh:hunter2@db/gh' } }\n",
      issues: ['store.postgres.url: a secret must be a reference (${ENV_VAR} or file:/path), not a literal value'],
    },
    {
      name: 'a postgres store schema that is not an identifier',
      source: "store: { postgres: { url: '${PG}', schema: Gate-House } }\n",
      env: { PG: 'postgres://db/gh' },
      issues: ['store.postgres.schema: must be lower-case letters, digits or "_", not starting with a digit'],
    },
    {
      name: 'a sqlite store without a path',
      source: 'store: { sqlite: {} }\n',
      issues: ['store.sqlite.path: is required'],
    },
    {
      name: 'bad log level',
      source: 'log: { level: verbose }\n',
      issues: ['log.level: Invalid option: expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent"'],
    },
    {
      name: 'a document that is not a mapping',
      source: '- a\n- b\n',
      issues: ['(root): Invalid input: expected object, received array'],
    },
    {
      name: 'connections that is not a list',
      source: 'connections: 5\n',
      issues: ['connections: Invalid input: expected array, received number'],
    },
  ];

  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(issuesOf(c.source, c.env), c.issues);
    });
  }

  test('an OIDC issuer over plain http is accepted on this host, or where allowInsecureHttp says the network is trusted', () => {
    const source = 'identity:\n  oidc:\n    issuers:\n      - { name: dev, issuer: http://127.0.0.1:9000, audience: gatehouse }\n      - { name: lab, issuer: http://localhost:9001/realms/lab, audience: gatehouse }\n      - { name: cluster, issuer: http://keycloak.auth.svc:8080/realms/corp, audience: gatehouse, allowInsecureHttp: true }\n';
    const config = parse(source);
    assert.deepEqual(config.identity.oidc.issuers.map((i) => [i.name, i.allowInsecureHttp]), [['dev', false], ['lab', false], ['cluster', true]]);
  });

  test('the ConfigError message names the file and lists every issue, one per line', () => {
    const source = `gateway:\n  lisen: { port: 1 }\nadmin: { listen: { port: 70000 } }\nconnections:\n  - { name: demo, type: http, target: 'ftp://x', access: { groups: [ml] } }\n  - { name: demo, type: http, target: 'http://x', access: { groups: [ml] } }\n`;
    let error: unknown;
    try {
      parse(source);
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof ConfigError);
    const expected = [
      'gateway: unknown key "lisen"',
      'admin.listen.port: Too big: expected number to be <=65535',
      'connections[0].target: must be an http:// or https:// URL',
      'connections[1].name: duplicate connection name "demo" (also connections[0])',
    ];
    assert.deepEqual(error.issues, expected);
    assert.equal(error.message, `invalid config ${file}:\n${expected.map((i) => `  ${i}`).join('\n')}`);
  });

  test('issues from several connections are all listed', () => {
    const source = `connections:\n  - { name: a, type: grpc, target: 'http://x', access: { groups: [ml] } }\n  - { name: b, type: http, target: 'http://x', access: { groups: [ml] }, credential: { secret: literal } }\n  - { name: c, type: http }\n`;
    assert.deepEqual(issuesOf(source), [
      'connections[0].type: "grpc" is not one of openai, http, postgres',
      'connections[1].credential.secret: a secret must be a reference (${ENV_VAR} or file:/path), not a literal value',
      'connections[2].target: is required',
      'connections[2].access: is required',
    ]);
  });

  test('checks across sections still run when a field elsewhere is invalid: one config check lists every error', () => {
    const source = `connections:
  - name: wh
    type: postgres
    listen: { port: 6543 }
    target: postgres://127.0.0.1:5432/x
    credential: { user: postgres, secret: "\${PG_SECRET}" }
    access: { groups: [a] }
    masking: { columns: { email: bogus } }
  - { name: llm, type: openai, target: 'http://127.0.0.1:9/v1', masking: [nope], access: { groups: [a] } }
`;
    assert.deepEqual(issuesOf(source), [
      'connections[0].credential.secret: environment variable PG_SECRET is not set',
      'connections[0].masking.columns.email: Invalid option: expected one of "redact"|"partial"|"null"',
      'connections[1].masking[0]: no masking profile named "nope" in masking.profiles',
      'connections[0]: no client could log in: give the listener a certificate (serverTls, or gateway.tls), or set allowPlaintext: true where the path is trusted (the API key then crosses in clear)',
    ]);
    // A check that reads an invalid field stays silent rather than guess: with masking itself invalid, no profile is "missing".
    const brokenMasking = `masking: { profiles: { pii: { operator: shred } } }\nconnections:\n  - { name: llm, type: openai, target: 'http://127.0.0.1:9/v1', masking: [pii], access: { groups: [a] } }\n`;
    assert.deepEqual(issuesOf(brokenMasking).filter((i) => i.includes('no masking profile')), []);
    assert.ok(issuesOf(brokenMasking).some((i) => i.startsWith('masking.profiles.pii.operator')), issuesOf(brokenMasking).join('\n'));
  });

  test('a masking field path that could match no field is refused, naming the path and the fix', () => {
    // Accepted before, these made the profile mask nothing in JSON answers, silently.
    const profile = (fields: string) => `masking:\n  profiles:\n    pii:\n      fields: ${fields}\nconnections:\n${connection('masking: [pii]')}`;
    assert.deepEqual(issuesOf(profile(`["choices[0].message.content", "messages[*].content", "choices[.message", "user..email", "user.e mail"]`)), [
      'masking.profiles.pii.fields[0]: "choices[0].message.content": "[0]" is not supported; "[]" stands for every element of an array (a dotted field path like choices[].message.content, user.*, **.email)',
      'masking.profiles.pii.fields[1]: "messages[*].content": "[*]" is not supported; "[]" stands for every element of an array (a dotted field path like choices[].message.content, user.*, **.email)',
      'masking.profiles.pii.fields[2]: "choices[.message": "choices[" is not a key, "*", "**" or a key followed by "[]" (a dotted field path like choices[].message.content, user.*, **.email)',
      'masking.profiles.pii.fields[3]: "user..email" has an empty segment (two dots, or a dot at an end) (a dotted field path like choices[].message.content, user.*, **.email)',
      'masking.profiles.pii.fields[4]: "user.e mail": "e mail" is not a key, "*", "**" or a key followed by "[]" (a dotted field path like choices[].message.content, user.*, **.email)',
    ]);
    const config = parse(profile(`["choices[].message.content", "items[][].note", "[].text", "user.*", "**.email", "contact-info.phone_number"]`));
    assert.deepEqual(config.masking.profiles['pii']!.fields, ['choices[].message.content', 'items[][].note', '[].text', 'user.*', '**.email', 'contact-info.phone_number']);
  });

  test('a duplicate name is reported alongside an invalid field in the same config', () => {
    const source = `connections:\n  - { name: demo, type: grpc, target: 'http://x', access: { groups: [ml] } }\n  - { name: demo, type: http, target: 'http://x', access: { groups: [ml] } }\n`;
    assert.deepEqual(issuesOf(source), [
      'connections[0].type: "grpc" is not one of openai, http, postgres',
      'connections[1].name: duplicate connection name "demo" (also connections[0])',
    ]);
  });

  test('YAML syntax errors are reported as (yaml): with the position', () => {
    assert.deepEqual(issuesOf('gateway: [\n'), ['(yaml): Flow sequence in block collection must be sufficiently indented and end with a ] at line 2, column 1:']);
    assert.deepEqual(issuesOf('a: b: c\n'), ['(yaml): Nested mappings are not allowed in compact mappings at line 1, column 4:']);
    assert.deepEqual(issuesOf('gateway: {}\ngateway: {}\n'), ['(yaml): Map keys must be unique at line 2, column 1:']);
    const [multi] = issuesOf('a: 1\n---\nb: 2\n');
    assert.match(multi!, /^\(yaml\): Source contains multiple documents/);
  });

  test('an unquoted ${VAR} in a flow mapping: the YAML error says to quote it', () => {
    const source = 'connections:\n  - name: llm\n    type: openai\n    target: http://127.0.0.1:9000/v1\n    credential: { secret: ${LLM_KEY} }\n    access: { groups: [ml] }\n';
    assert.deepEqual(issuesOf(source, { LLM_KEY: 'k' }), [
      '(yaml): Unexpected flow-map-start at node end at line 5, column 28: (in a flow mapping "{ … }", quote a reference: "${VAR}")',
    ]);
    assert.deepEqual(issuesOf('gateway: [\n'), ['(yaml): Flow sequence in block collection must be sufficiently indented and end with a ] at line 2, column 1:']);
  });

  test('the YAML error is one line, without the code frame', () => {
    for (const issue of issuesOf('gateway: [\n')) assert.doesNotMatch(issue, /\n/);
  });
});

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

describe('formatPath', () => {
  test('dotted keys and [index] for arrays, (root) for the empty path', () => {
    assert.equal(formatPath([]), '(root)');
    assert.equal(formatPath(['gateway']), 'gateway');
    assert.equal(formatPath(['connections', 1, 'target']), 'connections[1].target');
    assert.equal(formatPath(['connections', 0, 'access', 'groups', 2]), 'connections[0].access.groups[2]');
  });
});

describe('parseDuration', () => {
  const cases: ReadonlyArray<readonly [string | number, number | undefined]> = [
    ['250ms', 250],
    ['1.5s', 1500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['0s', 0],
    [' 10 s ', 10_000],
    ['10S', 10_000],
    ['1.0005s', 1001],
    [0, 0],
    [5000, 5000],
    [1.5, 1.5],
    ['-1', undefined],
    ['-1s', undefined],
    ['abc', undefined],
    ['', undefined],
    ['5 minutes', undefined],
    ['1e3ms', undefined],
    ['.5s', undefined],
    ['5', 5], // a bare number, even quoted, is milliseconds
    [-1, undefined],
    [Number.NaN, undefined],
    [Number.POSITIVE_INFINITY, undefined],
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input) ?? String(input)} → ${String(expected)}`, () => {
      assert.equal(parseDuration(input), expected);
    });
  }
});

describe('parseIsoTime', () => {
  const cases: ReadonlyArray<readonly [string, string | undefined]> = [
    ['2026-11-23T10:00:00Z', '2026-11-23T10:00:00.000Z'],
    ['2026-11-23T11:00:00+01:00', '2026-11-23T10:00:00.000Z'],
    ['2026-11-23T10:00:00.250Z', '2026-11-23T10:00:00.250Z'],
    ['2026-11-23T10:00Z', '2026-11-23T10:00:00.000Z'],
    ['2026-11-23 10:00:00Z', '2026-11-23T10:00:00.000Z'],
    ['2026-11-23', '2026-11-23T00:00:00.000Z'], // a date alone: midnight UTC
    ['20261123T164240Z', '2026-11-23T16:42:40.000Z'], // basic format
    ['20261123T164240+0100', '2026-11-23T15:42:40.000Z'],
    ['20261123', '2026-11-23T00:00:00.000Z'],
    ['Nov 23 2026', undefined], // Date.parse reads it, in a way that depends on the runtime
    ['2026-11-23T10:00:00 GMT', undefined],
    ['2026-13-01', undefined],
    // A day the month does not have is refused, not rolled over into the next month
    // (Date.parse reads 2026-02-30 as March 2: a prune --before it deleted two more days).
    ['2026-02-30T00:00:00Z', undefined],
    ['2026-02-29', undefined],
    ['2026-04-31T10:00:00Z', undefined],
    ['20260230T000000Z', undefined],
    ['2026-11-00', undefined],
    ['2028-02-29', '2028-02-29T00:00:00.000Z'], // a leap year
    ['2026-12-31T23:59:59Z', '2026-12-31T23:59:59.000Z'],
    ['2026-11-23T25:00Z', undefined],
    ['1700000000000', undefined],
    ['', undefined],
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input)} → ${String(expected)}`, () => {
      const time = parseIsoTime(input);
      assert.equal(time === undefined ? undefined : new Date(time).toISOString(), expected);
    });
  }
  test('a time without a zone is local time, as in JavaScript', () => {
    assert.equal(parseIsoTime('2026-11-23T10:00:00'), new Date(2026, 10, 23, 10, 0, 0).getTime());
  });
});

describe('parseSize', () => {
  const cases: ReadonlyArray<readonly [string | number, number | undefined]> = [
    ['10MiB', 10 * 1024 * 1024],
    ['512KiB', 512 * 1024],
    ['1GiB', 1024 ** 3],
    ['1MB', 1_000_000],
    ['1kb', 1000],
    ['2GB', 2_000_000_000],
    ['100b', 100],
    ['100', 100],
    ['1.5KiB', 1536],
    [' 10 mib ', 10 * 1024 * 1024],
    ['0', 0],
    [0, 0],
    [1024, 1024],
    [1.5, undefined],
    [-1, undefined],
    ['-1', undefined],
    ['abc', undefined],
    ['', undefined],
    ['10 megs', undefined],
    ['1TB', undefined],
    ['1e6', undefined],
    [Number.NaN, undefined],
    [Number.POSITIVE_INFINITY, undefined],
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input) ?? String(input)} → ${String(expected)}`, () => {
      assert.equal(parseSize(input), expected);
    });
  }
});

describe('cross-section references', () => {
  test('a policy obligation naming an unknown masking profile is a config error with its path', () => {
    const source = `masking:\n  profiles:\n    pii: { operator: redact }\npolicy:\n  rules:\n    - name: ok\n      effect: allow\n      obligations: { mask: [pii] }\n    - name: typo\n      effect: allow\n      obligations: { mask: [pi] }\n`;
    assert.deepEqual(issuesOf(source), ['policy.rules[1].obligations.mask: no masking profile named "pi" in masking.profiles']);
  });

  test('a policy rule naming a connection no connection has is a config error (a typo would silently disable it); globs may match nothing', () => {
    const source = `connections:\n  - { name: warehouse, type: openai, target: 'http://127.0.0.1:9/v1', access: { groups: [a] } }\npolicy:\n  rules:\n    - { name: ok, effect: deny, match: { connections: [warehouse] } }\n    - { name: glob, effect: deny, match: { connections: ['nothing-*'] } }\n    - { name: typo, effect: deny, match: { connections: ['ware*', warehose] } }\n`;
    assert.deepEqual(issuesOf(source), ['policy.rules[2].match.connections[1]: no connection named "warehose"']);
  });

  test('a limit naming a missing connection, or a postgres one (where limits count nothing), is a config error', () => {
    const source = `connections:
  - { name: api, type: openai, target: 'http://127.0.0.1:9/v1', access: { groups: [a] } }
  - { name: warehouse, type: postgres, listen: { port: 6432 }, allowPlaintext: true, target: 'postgres://127.0.0.1:5432/w', credential: { user: u, secret: '\${PW}' }, access: { groups: [a] } }
policy:
  limits:
    rules:
      - { name: ok, match: { connections: [api, 'ware*'] }, per: identity, window: 1m, requests: 10 }
      - { name: db, match: { connections: [warehouse] }, per: identity, window: 1m, requests: 10 }
      - { name: typo, match: { connections: [apii] }, per: identity, window: 1m, requests: 10 }
`;
    assert.deepEqual(issuesOf(source, { PW: 'x' }), [
      'policy.limits.rules[1].match.connections[0]: "warehouse" is a postgres connection, where limits count nothing: bound its statements with its limits.maxRows and limits.statementTimeout',
      'policy.limits.rules[2].match.connections[0]: no connection named "apii"',
    ]);
  });
});

describe('listener connection limits', () => {
  test('maxConnectionsPerClient above maxConnections is refused, naming the path', () => {
    assert.deepEqual(issuesOf(`gateway: { maxConnections: 100, maxConnectionsPerClient: 500 }\nadmin: { maxConnections: 10, maxConnectionsPerClient: 11 }\n${minimal}`), [
      'gateway.maxConnectionsPerClient: 500 is above maxConnections (100): one client can never hold more connections than the listener',
      'admin.maxConnectionsPerClient: 11 is above maxConnections (10): one client can never hold more connections than the listener',
    ]);
  });

  test('equal is accepted; lowering maxConnections alone lowers the per-client default with it', () => {
    const config = parse(`gateway: { maxConnections: 100 }\nadmin: { maxConnections: 20, maxConnectionsPerClient: 20 }\n${minimal}`);
    assert.deepEqual([config.gateway.maxConnections, config.gateway.maxConnectionsPerClient], [100, 100]);
    assert.deepEqual([config.admin.maxConnections, config.admin.maxConnectionsPerClient], [20, 20]);
    assert.equal(parse(`gateway: { maxConnections: 5000 }\n${minimal}`).gateway.maxConnectionsPerClient, 256);
  });
});

describe('connections routed through an agent', () => {
  test('via needs no target, refuses one, and needs an agents section', () => {
    assert.deepEqual(issuesOf(`connections:\n  - { name: inside, type: openai, via: 'agent:dc1', target: 'http://10.0.0.5/v1', access: { groups: [ml] } }\n`), [
      'connections[0].via: needs an agents: section (the endpoint agents dial in to)',
      "connections[0].target: must not be set with via: the agent's own config holds the target",
    ]);
    assert.deepEqual(issuesOf(`connections:\n  - { name: inside, type: openai, via: 'agent:dc1', access: { groups: [ml] } }\n`), [
      'connections[0].via: needs an agents: section (the endpoint agents dial in to)',
    ]);
  });
});
