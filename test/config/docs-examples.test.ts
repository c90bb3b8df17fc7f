// Every YAML example a reader may copy — the ```yaml blocks of docs/*.md and README.md,
// and examples/*.yaml — passes `gatehouse config check` as written (the real CLI, dist/),
// so the docs cannot drift from the schema again. What the example needs from outside
// is supplied: its `${ENV}` references get dummy values, and its `file:` references are
// pointed at generated files of the kind the key expects (a certificate, its key, an
// Ed25519 key, a secret).
//
// A block is skipped only when the line before its fence says so:
//   <!-- config-check: partial (why) -->       an excerpt (e.g. with "# …" elided)
//   <!-- config-check: agent -->               the agent's own config (agent.yaml)
//   <!-- config-check: connections a, b -->    checked with stub connections a and b,
//                                              which the text around it assumes
//   <!-- config-check: connections a; files p.yaml -->   … and an empty policy file p.yaml

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAgentConfig } from '../../src/agent/agent-config.js';
import { loadConfig } from '../../src/config/index.js';
import { gatehouseBin } from '../helpers/gateway-process.js';
import { makeTestPki } from '../helpers/tls.js';

const execFileAsync = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));

interface Example {
  readonly where: string;
  readonly yaml: string;
  /** The `config-check:` marker before the fence, if any. */
  readonly marker: string | undefined;
}

function markdownExamples(file: string): Example[] {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  const examples: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```yaml') continue;
    const end = lines.indexOf('```', i + 1);
    assert.ok(end > i, `${file}:${i + 1}: unterminated yaml block`);
    const marker = /^<!-- config-check: (.*) -->$/.exec(lines[i - 1] ?? '')?.[1];
    examples.push({ where: `${file}:${i + 1}`, yaml: `${lines.slice(i + 1, end).join('\n')}\n`, marker });
    i = end;
  }
  return examples;
}

const docs = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const examples = docs.flatMap(markdownExamples);
const exampleFiles = readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.yaml')).map((f) => `examples/${f}`);

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-docs-examples-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const pki = makeTestPki();
after(() => rmSync(pki.dir, { recursive: true, force: true }));

// What a `file:` reference points at, by the key that holds it.
const ed25519Path = join(dir, 'ed25519.pem');
writeFileSync(ed25519Path, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
const secretPath = join(dir, 'secret.txt');
writeFileSync(secretPath, 'dummy-secret-0123456789abcdef\n');
function fixtureFor(key: string | undefined): string {
  switch (key) {
    case 'cert':
    case 'idpCert':
      return pki.certPath;
    case 'key':
      return pki.keyPath;
    case 'ca':
      return pki.caPath;
    case 'signingKey':
      return ed25519Path;
    default:
      return secretPath;
  }
}

/** The example with each `file:` reference pointed at a generated file of its kind. */
function withFixtures(yaml: string): string {
  return yaml.replace(/(?:(\w+):\s*)?file:([^\s,}\]"']+)/g, (_, key: string | undefined) => `${key === undefined ? '' : `${key}: `}file:${fixtureFor(key)}`);
}

/** Dummy values for the example's `${ENV}` references, of the form each one needs. */
function envFor(yaml: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [, name] of yaml.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
    if (/DATABASE_URL$/.test(name!)) env[name!] = 'postgres://gatehouse@127.0.0.1:5432/gatehouse';
    else if (/REDIS_URL$/.test(name!)) env[name!] = 'redis://127.0.0.1:6379';
    else if (/_URL$/.test(name!)) env[name!] = 'https://example.com';
    else if (/RAW_KEY$/.test(name!)) env[name!] = 'ab'.repeat(32);
    else env[name!] = 'dummy-secret-0123456789abcdef';
  }
  return env;
}

function stubConnections(names: readonly string[]): string {
  return `connections:\n${names.map((n) => `  - { name: ${n}, type: http, target: "http://127.0.0.1:9/", access: { groups: [stub] } }\n`).join('')}`;
}

async function configCheck(file: string, env: NodeJS.ProcessEnv): Promise<{ ok: boolean; output: string }> {
  // Only PATH from this process: an example must not pass thanks to the tester's own variables.
  try {
    const { stdout } = await execFileAsync(process.execPath, [gatehouseBin, 'config', 'check', file], { env: { PATH: process.env['PATH'], ...env } });
    return { ok: true, output: stdout };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

let written = 0;
/** Writes the example, as a reader would save it, and returns its path. */
function save(yaml: string): string {
  const file = join(dir, `example-${++written}.yaml`);
  writeFileSync(file, yaml);
  return file;
}

describe('docs and examples: every YAML example passes config check', () => {
  test('the docs have examples, and each marker is one this test knows', () => {
    assert.ok(examples.length >= 15, `found ${examples.length} examples`);
    for (const e of examples) {
      if (e.marker === undefined) continue;
      if (/^(partial \(.+\)|agent)$/.test(e.marker)) continue;
      for (const directive of e.marker.split('; ')) assert.match(directive, /^(connections [a-z0-9_-]+(, [a-z0-9_-]+)*|files [\w./-]+(, [\w./-]+)*)$/, `${e.where}: unknown marker "${e.marker}"`);
    }
  });

  for (const example of examples) {
    if (example.marker?.startsWith('partial')) continue;
    if (example.marker === 'agent') {
      test(`${example.where} (agent.yaml) loads as an agent config`, () => {
        const yaml = withFixtures(example.yaml);
        parseAgentConfig(yaml, save(yaml), envFor(yaml));
      });
      continue;
    }
    test(`${example.where} passes config check`, async () => {
      const directive = (name: string) => example.marker?.split('; ').find((d) => d.startsWith(`${name} `))?.slice(name.length + 1).split(', ') ?? [];
      const stubs = directive('connections');
      for (const policyFile of directive('files')) {
        mkdirSync(dirname(join(dir, policyFile)), { recursive: true });
        writeFileSync(join(dir, policyFile), 'rules: []\n');
      }
      assert.ok(stubs.length === 0 || !/^connections:/m.test(example.yaml), `${example.where}: stub connections go with an example that has none`);
      const full = `${stubs.length === 0 ? '' : stubConnections(stubs)}${withFixtures(example.yaml)}`;
      const result = await configCheck(save(full), envFor(full));
      assert.ok(result.ok, `${example.where}:\n${example.yaml}\n→ ${result.output}`);
      assert.match(result.output, /: valid — /);
    });
  }

  for (const file of exampleFiles) {
    test(`${file} passes config check where it is`, async () => {
      const yaml = readFileSync(join(root, file), 'utf8');
      const result = await configCheck(join(root, file), envFor(yaml));
      assert.ok(result.ok, `${file}: ${result.output}`);
    });
  }
});

describe('docs examples do what the text around them says', () => {
  const find = (needle: string) => {
    const example = examples.find((e) => e.yaml.includes(needle));
    assert.ok(example, `no example with ${needle}`);
    const yaml = withFixtures(example.yaml);
    return loadConfig(save(yaml), envFor(yaml));
  };

  test('configuration.md, the complete example: its connections, with their own timeouts and credential header', () => {
    const config = find('name: registry');
    assert.deepEqual(config.connections.map((c) => c.name), ['openai', 'vllm', 'registry']);
    const [openai, vllm, registry] = config.connections as unknown as { timeouts: { headers: number }; credential?: { header: string; scheme: string } }[];
    assert.equal(vllm!.timeouts.headers, 120_000);
    assert.equal(openai!.timeouts.headers, 60_000, 'the documented default');
    assert.deepEqual({ header: registry!.credential!.header, scheme: registry!.credential!.scheme }, { header: 'x-api-key', scheme: '' });
    assert.equal(config.recording.maxBodyBytes, 1024 * 1024);
    assert.equal(config.gateway.listen.port, 8443);
  });

  test('identity.md: "header and ttl are the defaults" of identityAssertion', () => {
    const example = examples.find((e) => e.yaml.includes('identityAssertion:'));
    assert.ok(example);
    const withoutThem = example.yaml.replace(/identityAssertion: \{[^}]*\}/, 'identityAssertion: {}');
    const a = loadConfig(save(example.yaml), {}).connections[0] as unknown as { identityAssertion: unknown };
    const b = loadConfig(save(withoutThem), {}).connections[0] as unknown as { identityAssertion: unknown };
    assert.deepEqual(a.identityAssertion, b.identityAssertion);
  });
});
