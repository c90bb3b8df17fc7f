// Gathers the rules of a policy: the config's own `policy.rules`, then each file of
// `policy.files`, then each pack of `policy.packs` (policy-packs/<name>.yaml), each
// validated with the same rule schema. Errors name the file and the dotted path,
// e.g. `policy file rules/extra.yaml: rules[2].when[0].regex: …`.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { GatehouseConfig } from '../config/index.js';
import { formatPath, unknownConnectionNames } from '../config/index.js';
import { ruleFileSchema, ruleSchema, type PolicyRuleSpec } from '../config/policy-schema.js';
import { compilePolicy, PolicyError, type CompileOptions, type Policy, type PolicySource } from './compile-policy.js';

export const packsDir = fileURLToPath(new URL('../../policy-packs/', import.meta.url));

export function packPath(name: string): string {
  return `${packsDir}${name}.yaml`;
}

/** A policy file with an invalid rule; `validRules` are those valid on their own (with their index), still checked for other problems. */
export class RuleFileError extends PolicyError {
  constructor(message: string, issues: readonly string[], readonly validRules: readonly [number, PolicyRuleSpec][]) {
    super(message, issues);
  }
}

function validRules(raw: unknown): [number, PolicyRuleSpec][] {
  const rules = (raw as { rules?: unknown } | null)?.rules;
  if (!Array.isArray(rules)) return [];
  return rules.flatMap((rule: unknown, i): [number, PolicyRuleSpec][] => {
    const result = ruleSchema.safeParse(rule);
    return result.success ? [[i, result.data]] : [];
  });
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
    const issues = result.error.issues.map((i) => `${formatPath(i.path)}: ${i.code === 'unrecognized_keys' ? `unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}` : i.message}`);
    throw new RuleFileError(`${label}:\n${issues.map((i) => `  ${i}`).join('\n')}`, issues.map((i) => `${label}: ${i}`), validRules(raw));
  }
  return result.data.rules;
}

/** What policySourceOf reads of a config (`config check` gives it from a config that failed elsewhere). */
export interface PolicyInputs {
  readonly policy: Pick<GatehouseConfig['policy'], 'rules' | 'files' | 'packs' | 'timezone' | 'limits'>;
  /** The connections; undefined when their names are not known (an invalid connection): the checks on names are skipped. */
  readonly connections: readonly { readonly name: string; readonly access: { readonly groups: readonly string[] } }[] | undefined;
  readonly approvals?: { readonly rules?: Readonly<Record<string, unknown>> | undefined } | undefined;
}

/**
 * The policy source a config describes (reads policy files and packs). Every problem is
 * reported in one PolicyError (each file's, each name's), not the first.
 * `checkApprovals`: refuse `approvals.rules` names no require_approval rule has (off when
 * a policy is injected in place of the config's).
 */
export function policySourceOf(config: PolicyInputs, options: { readonly checkApprovals?: boolean } = {}): PolicySource {
  const { source, errors } = collectPolicySource(config, options);
  if (errors.length > 0) throw PolicyError.of(errors);
  return source;
}

/**
 * The rules a config's policy gathers, and every problem found on the way. `complete` is
 * false when a policy file or pack could not be read or validated: the checks across
 * rules (unique names, references) would then report what the missing rules hold.
 */
export function collectPolicySource(config: PolicyInputs, { checkApprovals = true }: { readonly checkApprovals?: boolean } = {}): { source: PolicySource; errors: PolicyError[]; complete: boolean } {
  const rules: PolicyRuleSpec[] = [...config.policy.rules];
  const origins = config.policy.rules.map((_, i) => `policy.rules[${i}]`);
  const errors: PolicyError[] = [];
  let complete = true;
  // A literal connection name no connection has (a typo) would make the rule never match:
  // refused like in `policy.rules` (checked by the config schema).
  const names = config.connections === undefined ? undefined : new Set(config.connections.map((c) => c.name));
  const checkNames = (label: string, i: number, rule: PolicyRuleSpec) => {
    for (const [k, name] of names === undefined ? [] : unknownConnectionNames(rule.match?.connections ?? [], names)) {
      errors.push(new PolicyError(`${label}: rules[${i}].match.connections[${k}]: no connection named "${name}"`));
    }
  };
  const add = (label: string, read: () => PolicyRuleSpec[]) => {
    let fileRules: PolicyRuleSpec[];
    try {
      fileRules = read();
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      errors.push(error);
      // The file's valid rules are still checked: one bad regex does not hide a typo beside it.
      if (error instanceof RuleFileError) for (const [i, rule] of error.validRules) checkNames(label, i, rule);
      complete = false;
      return;
    }
    fileRules.forEach((rule, i) => {
      checkNames(label, i, rule);
      origins.push(`${label}: rules[${i}]`);
    });
    rules.push(...fileRules);
  };
  for (const file of config.policy.files) add(`policy file ${file}`, () => loadRuleFile(file));
  for (const pack of config.policy.packs) add(`policy pack ${pack}`, () => loadRuleFile(packPath(pack), `policy pack ${pack}`));
  // Approval options are looked up by the deciding rule's name: one under a name no
  // require_approval rule has (a typo) would never apply, and that rule's reviews would
  // quietly take the defaults (other reviewers, fewer approvals). Unknowable while a
  // policy file cannot be read.
  for (const name of checkApprovals && complete ? Object.keys(config.approvals?.rules ?? {}) : []) {
    if (!rules.some((rule) => rule.name === name && rule.effect === 'require_approval')) {
      errors.push(new PolicyError(`approvals.rules.${name}: no policy rule with effect require_approval is named "${name}" (in the config, its policy files or packs), so these options would never apply`));
    }
  }
  const source = {
    access: (config.connections ?? []).map((c) => ({ connection: c.name, groups: c.access.groups })),
    rules,
    timezone: config.policy.timezone,
    limits: config.policy.limits.rules,
    origins,
  };
  return { source, errors, complete };
}

/** The files whose change should reload the policy. */
export function policyFiles(config: GatehouseConfig): string[] {
  return [...config.policy.files];
}

export function buildPolicy(config: GatehouseConfig, options: CompileOptions = {}): Policy {
  return compilePolicy(policySourceOf(config), options);
}
