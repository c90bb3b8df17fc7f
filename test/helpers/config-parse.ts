// Shared by the config tests: parse a YAML source as if it came from a file in a
// temporary directory, and collect a refused config's issues.
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { ConfigError, parseConfig, type GatehouseConfig } from '../../src/config/index.js';

export const dir = mkdtempSync(join(tmpdir(), 'gatehouse-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The config file the sources below pretend to come from. */
export const file = join(dir, 'gatehouse.yaml');

export function parse(source: string, env: NodeJS.ProcessEnv = {}, options: { secrets?: 'all' | 'store-only' } = {}): GatehouseConfig {
  return parseConfig(source, file, env, options);
}

/** Parses, expecting a ConfigError; returns its issues. */
export function issuesOf(source: string, env: NodeJS.ProcessEnv = {}, options: { secrets?: 'all' | 'store-only' } = {}): readonly string[] {
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
export function connection(fields: string = ''): string {
  return `  - { name: demo, type: openai, target: 'http://127.0.0.1:9000/v1', access: { groups: [ml] }${fields ? `, ${fields}` : ''} }\n`;
}

export const minimal = `connections:\n${connection()}`;
export const ed25519Pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
