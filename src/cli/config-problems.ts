// Every problem of a config file in one run, for `config check` and `start`: a user fixing
// a config wants the whole list, not one problem per attempt. The checks, in order, and
// what each needs of the ones before:
// - the file is read and its YAML parsed: nothing else can run without them;
// - the schema (every section, secret references, references across sections);
// - the certificates (PEM, key matching the certificate): of a valid config, or else of
//   each setting whose references resolve;
// - the policy: files and packs read and validated, connection names in their rules,
//   approvals.rules names, then the checks across rules (unique names, responseGuards),
//   which need every rule read. From an invalid config, the policy section is validated
//   alone, and the checks on connection names skipped if a connection's name is invalid.
// No message holds a secret's value: the schema's and the certificates' name the
// reference and the setting only.

import { dirname, resolve } from 'node:path';
import { certificateIssues, ConfigError, inspectConfigSource, parsePolicySection, rawCertificateSettings, rawConnectionNames, readConfigSource, type GatehouseConfig } from '../config/index.js';
import { disguisedEntityTypes } from '../mask/index.js';
import { collectPolicySource, compilePolicy, PolicyError, type Policy, type PolicyInputs } from '../policy/index.js';

export interface ConfigReport {
  /** Set when the config has no problem. */
  readonly config?: GatehouseConfig;
  readonly policy?: Policy;
  readonly issues: readonly string[];
}

export function configProblems(file: string, env: NodeJS.ProcessEnv = process.env): ConfigReport {
  let source: string;
  try {
    source = readConfigSource(file);
  } catch (error) {
    if (error instanceof ConfigError) return { issues: error.issues };
    throw error;
  }
  const baseDir = dirname(resolve(file));
  const inspection = inspectConfigSource(source, env, baseDir);
  if (inspection.raw === undefined) return { issues: inspection.issues };
  const { config, raw } = inspection;
  const issues = [...inspection.issues];
  issues.push(...certificateIssues(config ?? rawCertificateSettings(raw, env, baseDir)));

  const policyInputs = config !== undefined ? { inputs: config, allRules: true } : policyInputsOf(raw, env, baseDir);
  let policy: Policy | undefined;
  if (policyInputs !== undefined) {
    const collected = collectPolicySource(policyInputs.inputs);
    issues.push(...collected.errors.flatMap((e) => e.issues));
    if (collected.complete && policyInputs.allRules) {
      try {
        policy = compilePolicy(collected.source, { detectEntities: disguisedEntityTypes });
      } catch (error) {
        if (!(error instanceof PolicyError)) throw error;
        issues.push(...error.issues);
      }
    }
  }
  return issues.length === 0 && config !== undefined ? { config, ...(policy ? { policy } : {}), issues } : { issues };
}

/** Throws a ConfigError listing every problem; the valid config and its policy otherwise. */
export function checkedConfig(file: string, env: NodeJS.ProcessEnv = process.env): { config: GatehouseConfig; policy: Policy } {
  const report = configProblems(file, env);
  if (report.config === undefined || report.policy === undefined) throw new ConfigError(file, report.issues);
  return { config: report.config, policy: report.policy };
}

/** The policy inputs of an invalid config; `allRules` false when an inline rule is invalid (the checks across rules then wait). */
function policyInputsOf(raw: unknown, env: NodeJS.ProcessEnv, baseDir: string): { inputs: PolicyInputs; allRules: boolean } | undefined {
  const section = parsePolicySection(raw, { env, baseDir });
  if (section === undefined) return undefined;
  // approvals.rules names are checked against every rule: not while one is missing.
  const approvals = (raw as { approvals?: { rules?: unknown } } | null)?.approvals?.rules;
  const approvalRules = section.allRules && approvals !== null && typeof approvals === 'object' && !Array.isArray(approvals) ? (approvals as Record<string, unknown>) : undefined;
  return { inputs: { policy: section.policy, connections: rawConnectionNames(raw), approvals: { rules: approvalRules } }, allRules: section.allRules };
}
