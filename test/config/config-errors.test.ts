import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config/index.js';
import { file, parse, issuesOf, connection } from '../helpers/config-parse.js';

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
      name: 'a port from ${ENV} that is not a number, or from a variable not set',
      source: `gateway: { listen: { port: "\${GW_PORT}" } }\nadmin: { listen: { port: "\${ADMIN_PORT}" } }\n`,
      env: { GW_PORT: '80x' },
      issues: ['gateway.listen.port: "80x" is not a port number (0-65535)', 'admin.listen.port: environment variable ADMIN_PORT is not set'],
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
    assert.deepEqual(issuesOf('gateway: [\n'), ['(yaml): Flow sequence in block collection must be sufficiently indented and end with a ] at line 2, column 1']);
    assert.deepEqual(issuesOf('a: b: c\n'), ['(yaml): Nested mappings are not allowed in compact mappings at line 1, column 4']);
    assert.deepEqual(issuesOf('gateway: {}\ngateway: {}\n'), ['(yaml): Map keys must be unique at line 2, column 1']);
    const [multi] = issuesOf('a: 1\n---\nb: 2\n');
    assert.match(multi!, /^\(yaml\): Source contains multiple documents/);
  });

  test('an unquoted ${VAR} in a flow mapping: the YAML error says to quote it', () => {
    const source = 'connections:\n  - name: llm\n    type: openai\n    target: http://127.0.0.1:9000/v1\n    credential: { secret: ${LLM_KEY} }\n    access: { groups: [ml] }\n';
    assert.deepEqual(issuesOf(source, { LLM_KEY: 'k' }), [
      '(yaml): Unexpected flow-map-start at node end at line 5, column 28 (in a flow mapping "{ … }", quote a reference: "${VAR}")',
    ]);
    assert.deepEqual(issuesOf('gateway: [\n'), ['(yaml): Flow sequence in block collection must be sufficiently indented and end with a ] at line 2, column 1']);
  });

  test('the YAML error is one line, without the code frame', () => {
    for (const issue of issuesOf('gateway: [\n')) assert.doesNotMatch(issue, /\n/);
    // Not ending on the colon that introduced the frame (it read as if something were missing).
    assert.deepEqual(issuesOf('connections:\n  - name: a\n   target: x\n'), ['(yaml): Sequence item without - indicator at line 3, column 1']);
  });
});
