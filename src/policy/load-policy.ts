// Gathers the rules of a policy: the config's own `policy.rules`, then each file of
// `policy.files`, then each pack of `policy.packs` (policy-packs/<name>.yaml), each
// validated with the same rule schema. Errors name the file and the dotted path,
// e.g. `policy file rules/extra.yaml: rules[2].when[0].regex: …`.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { GatehouseConfig } from '../config/index.js';
import { formatPath, unknownConnectionNames } from '../config/index.js';
import { ruleFileSchema, type PolicyRuleSpec } from '../config/policy-schema.js';
import { compilePolicy, PolicyError, type CompileOptions, type Policy, type PolicySource } from './compile-policy.js';

export const packsDir = fileURLToPath(new URL('../../policy-packs/', import.meta.url));

export function packPath(name: string): string {
  return `${packsDir}${name}.yaml`;
}

export function loadRuleFile(file: string, label = `policy file ${file}`): PolicyRuleSpec[] {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'), { maxAliasCount: 100 }) ?? {};
  } catch (error) {
    throw new PolicyError(`${label}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'cannot read: ENOENT' : (error as Error).message.split('\n')[0]}`);
  }
  const result = ruleFileSchema.safeParse(raw);
  if (!result.success) {
    throw new PolicyError(`${label}:\n${result.error.issues.map((i) => `  ${formatPath(i.path)}: ${i.code === 'unrecognized_keys' ? `unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}` : i.message}`).join('\n')}`);
  }
  return result.data.rules;
}

/** The policy source a config describes (reads policy files and packs). */
/** `checkApprovals`: refuse `approvals.rules` names no require_approval rule has (off when a policy is injected in place of the config's). */
export function policySourceOf(config: GatehouseConfig, { checkApprovals = true }: { readonly checkApprovals?: boolean } = {}): PolicySource {
  const rules: PolicyRuleSpec[] = [...config.policy.rules];
  // A literal connection name no connection has (a typo) would make the rule never match:
  // refused like in `policy.rules` (checked by the config schema).
  const names = new Set(config.connections.map((c) => c.name));
  const checked = (label: string, fileRules: PolicyRuleSpec[]): PolicyRuleSpec[] => {
    fileRules.forEach((rule, i) => {
      const [unknown] = unknownConnectionNames(rule.match?.connections ?? [], names);
      if (unknown !== undefined) throw new PolicyError(`${label}: rules[${i}].match.connections[${unknown[0]}]: no connection named "${unknown[1]}"`);
    });
    return fileRules;
  };
  for (const file of config.policy.files) rules.push(...checked(`policy file ${file}`, loadRuleFile(file)));
  for (const pack of config.policy.packs) rules.push(...checked(`policy pack ${pack}`, loadRuleFile(packPath(pack), `policy pack ${pack}`)));
  // Approval options are looked up by the deciding rule's name: one under a name no
  // require_approval rule has (a typo) would never apply, and that rule's reviews would
  // quietly take the defaults (other reviewers, fewer approvals).
  for (const name of checkApprovals ? Object.keys(config.approvals?.rules ?? {}) : []) {
    if (!rules.some((rule) => rule.name === name && rule.effect === 'require_approval')) {
      throw new PolicyError(`approvals.rules.${name}: no policy rule with effect require_approval is named "${name}" (in the config, its policy files or packs), so these options would never apply`);
    }
  }
  return {
    access: config.connections.map((c) => ({ connection: c.name, groups: c.access.groups })),
    rules,
    timezone: config.policy.timezone,
    limits: config.policy.limits.rules,
  };
}

/** The files whose change should reload the policy. */
export function policyFiles(config: GatehouseConfig): string[] {
  return [...config.policy.files];
}

export function buildPolicy(config: GatehouseConfig, options: CompileOptions = {}): Policy {
  return compilePolicy(policySourceOf(config), options);
}
