import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { dir, parse, issuesOf, connection, minimal, ed25519Pem } from '../helpers/config-parse.js';

describe('parseConfig: defaults', () => {
  test('audit.alerts: each alert is off with false, or its thresholds; a bad value names its path', () => {
    const config = parse('audit:\n  alerts:\n    failedAuthThenSuccess: false\n    bulkRequests: { requests: 600 }\n');
    assert.deepEqual(config.audit.alerts, { failedAuthThenSuccess: false, bulkRequests: { requests: 600, window: 60_000 } });
    const issues = issuesOf('audit:\n  alerts:\n    bulkRequests: { requests: 1 }\n    failedAuthThenSucess: { failures: 2 }\n');
    assert.ok(issues.some((i) => i.startsWith('audit.alerts.bulkRequests')), issues.join('\n'));
    assert.ok(issues.some((i) => i.startsWith('audit.alerts') && i.includes('failedAuthThenSucess')), issues.join('\n'));
  });

  test('a minimal config gets the documented defaults', () => {
    const config = parse(minimal);
    assert.deepEqual(config.gateway, { listen: { host: '127.0.0.1', port: 8080 }, maxRequestBody: 10 * 1024 * 1024, maxResponseBody: 512 * 1024 * 1024, maxConnections: 4096, maxConnectionsPerClient: 256, shutdownGrace: 10_000 });
    assert.deepEqual(config.admin, { enabled: true, listen: { host: '127.0.0.1', port: 8081 }, groups: ['gatehouse-admins'], maxConnections: 256, maxConnectionsPerClient: 64 });
    assert.deepEqual(config.store, { sqlite: { path: join(dir, 'data/gatehouse.db') } });
    assert.deepEqual(config.recording, { maxBodyBytes: 256 * 1024, enabled: true });
    assert.deepEqual(config.audit, {
      keyFile: join(dir, 'data/audit-signing-key.pem'),
      previousPublicKeys: [],
      checkpoint: { every: 1000, interval: 60_000 },
      progress: { interval: 250, bytes: 64 * 1024 },
      sinks: [],
      alerts: { failedAuthThenSuccess: { failures: 3, window: 15 * 60_000 }, bulkRequests: false },
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

describe('listener ports from the environment', () => {
  test('one config file for several gateways on one host: each listener port may be a ${ENV} reference', () => {
    const source = `gateway: { listen: { port: "\${GW_PORT}" } }
admin: { listen: { port: "\${ADMIN_PORT}" } }
connections:
  - { name: pg, type: postgres, listen: { port: "\${PG_PORT}" }, allowPlaintext: true, target: 'postgres://db:5432/app', credential: { user: gh, secret: "\${PGPW}" }, access: { groups: [ml] } }
`;
    const config = parse(source, { GW_PORT: '18002', ADMIN_PORT: '18102', PG_PORT: '0', PGPW: 'pw' });
    assert.deepEqual([config.gateway.listen.port, config.admin.listen.port, (config.connections[0] as { listen: { port: number } }).listen.port], [18002, 18102, 0]);
  });
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
