// docs/configuration.md and the schema name the same keys: every key the schema accepts
// is named in the reference (in a table or an example), and every key a table names
// is one the schema has. A key added without its documentation, or a documented key
// renamed in code, fails here rather than in front of a user.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { buildConfigSchema } from '../../src/config/schema.js';

const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');

/** Every key path the schema accepts: `gateway.listen.host`, `connections[].tls.ca`, `masking.profiles.<name>.entities`. */
function schemaKeys(): string[] {
  const keys: string[] = [];
  const seen = new Set<unknown>();
  const walk = (schema: unknown, path: string): void => {
    if (schema === null || typeof schema !== 'object' || seen.has(schema)) return;
    seen.add(schema);
    // zod 4's definition of each schema kind (what a wrapper wraps, an object's shape).
    const def = (schema as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
    if (!def) return;
    switch (def['type']) {
      case 'object':
        for (const [key, value] of Object.entries(def['shape'] as Record<string, unknown>)) {
          const at = path === '' ? key : `${path}.${key}`;
          keys.push(at);
          walk(value, at);
        }
        return;
      case 'pipe':
        walk(def['in'], path);
        walk(def['out'], path);
        return;
      case 'optional':
      case 'default':
      case 'prefault':
      case 'nullable':
        walk(def['innerType'], path);
        return;
      case 'array':
        walk(def['element'], `${path}[]`);
        return;
      case 'union':
        for (const option of def['options'] as unknown[]) walk(option, path);
        return;
      case 'record':
        walk(def['valueType'], `${path}.<name>`);
        return;
    }
  };
  walk(buildConfigSchema({ env: {}, baseDir: '/' }), '');
  return keys;
}

const keys = schemaKeys();
/** The text of every `code span` of the reference, and of its YAML examples. */
const spans = [...doc.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
const examples = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).join('\n');

describe('docs/configuration.md names every config key, and only keys that exist', () => {
  test('the walk finds the schema keys', () => {
    assert.ok(keys.length > 200, `${keys.length} keys`);
    for (const k of ['gateway.maxConnectionsPerClient', 'connections[].timeouts.headers', 'masking.profiles.<name>.customEntities[].maxLength', 'policy.limits.rules[].embeddingInputs', 'identity.saml.idpCert']) {
      assert.ok(keys.includes(k), k);
    }
  });

  test('every key the schema accepts is named in the reference', () => {
    const missing = keys.filter((k) => {
      const name = k.split('.').pop()!.replace(/\[\]$/, '');
      const word = new RegExp(`(^|[^A-Za-z0-9_])${name}($|[^A-Za-z0-9_])`);
      return !spans.some((s) => word.test(s)) && !new RegExp(`(^|[\\s{,])${name}:`, 'm').test(examples);
    });
    assert.deepEqual(missing, [], `keys the schema accepts that docs/configuration.md does not name:\n${missing.join('\n')}`);
  });

  test('every key a table of the reference names is a key of the schema', () => {
    const names = new Set(keys.flatMap((k) => k.split('.').map((s) => s.replace(/\[\]$/, ''))));
    const unknown: string[] = [];
    for (const line of doc.split('\n')) {
      if (!line.startsWith('| `')) continue;
      for (const [, span] of line.split('|')[1]!.matchAll(/`([^`]+)`/g)) {
        // `….entities` continues the row above; `<rule-name>` is a placeholder.
        for (const segment of span!.replace(/^…\.?/, '').split('.')) {
          const name = segment.replace(/\[\]$/, '');
          if (name !== '' && !name.startsWith('<') && !names.has(name)) unknown.push(`${span} (${name})`);
        }
      }
    }
    assert.deepEqual(unknown, [], `keys docs/configuration.md documents that the schema does not have:\n${unknown.join('\n')}`);
  });
});
