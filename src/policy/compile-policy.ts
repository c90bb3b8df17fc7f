// Compiles the policy — connection access plus the rules from config, policy files and
// packs — into a decision function, once (at start and on each reload).
// Enforces:
// - default deny: an exchange no rule allows is denied by `default-deny`;
// - connection access by group: rule `connection-access:<connection>` allows an
//   identity holding any of the connection's `access.groups`;
// - a request rule applies when all of its `match` criteria and `when` conditions hold;
// - deny beats approval beats allow, when several rules match (see combineEffects);
// - obligations of every applying request rule, and the names of the response rules
//   whose `match` holds, are attached to the decision;
// - the version is a hash of everything compiled, and of the limits enforced beside the
//   rules, recorded with every decision (so a reload that only edits a limit is a
//   policy change too: logged, chained as `policy.changed`, a new version).
// Rules are indexed by connection so a request only visits the rules that can apply.

import { createHash } from 'node:crypto';
import type { LimitRuleSpec, PolicyRuleSpec } from '../config/policy-schema.js';
import type { Decision, Effect, Exchange, Obligations } from '../exchange/index.js';
import { compileCondition, compileMatch, type Criterion } from './compile-criteria.js';
import { EvalContext, type DetectEntities } from './eval-context.js';
import { isLiteral } from './glob.js';

export interface AccessRuleSource {
  readonly connection: string;
  readonly groups: readonly string[];
}

export interface PolicySource {
  readonly access?: readonly AccessRuleSource[];
  /** Rules in order: config, then files, then packs (see load-policy.ts). */
  readonly rules?: readonly PolicyRuleSpec[];
  /** Default time zone of time windows. */
  readonly timezone?: string;
  /** `policy.limits.rules`: enforced by the limiter, not here, but part of the version. */
  readonly limits?: readonly LimitRuleSpec[];
  /** Where each of `rules` is written (`policy.rules[2]`, `policy file x.yaml: rules[0]`), for the errors. */
  readonly origins?: readonly string[];
}

export interface CompileOptions {
  /** Entity detection for `entities` conditions; called at most once per exchange and field. */
  readonly detectEntities?: DetectEntities | undefined;
}

/**
 * A policy that cannot be compiled; each issue names the rule and field (and, from the
 * config, where the rule is written). The message is the issues, one a line.
 */
export class PolicyError extends Error {
  readonly issues: readonly string[];
  constructor(message: string, issues: readonly string[] = [message]) {
    super(message);
    this.name = 'PolicyError';
    this.issues = issues;
  }

  /** One error for several issues (each may be several lines: a policy file's). */
  static of(errors: readonly PolicyError[]): PolicyError {
    return errors.length === 1 ? errors[0]! : new PolicyError(errors.map((e) => e.message).join('\n'), errors.flatMap((e) => e.issues));
  }
}

export interface ResponseViolation {
  readonly rule: string;
  readonly message: string;
}

export interface RuleExplanation {
  readonly rule: string;
  readonly effect: Effect;
  readonly on: 'request' | 'response';
  /** For a response rule: its match holds, so the answer will be checked. */
  readonly matched: boolean;
  readonly checks: ReadonlyArray<{ readonly criterion: string; readonly ok: boolean }>;
}

export interface Explanation {
  readonly decision: Decision;
  readonly rules: readonly RuleExplanation[];
}

/** What the pipeline needs of a policy: a version and a decision (and whether decisions may be reused). */
export type DecisionPolicy = Pick<Policy, 'version' | 'decide'> & Partial<Pick<Policy, 'cacheableOn'>>;

export interface Policy {
  /** A hash of the compiled rules, recorded with every decision. */
  readonly version: string;
  readonly ruleCount: number;
  /** Every name a decision of this policy can give (see policyRuleNames), for the hints of a search. */
  readonly ruleNames: readonly string[];
  decide(exchange: Exchange): Decision;
  /**
   * True when every rule that can apply on `connection` reads only the exchange's
   * connection, identity, operation, model, method and path (no time window, no
   * condition on what inspection found): two exchanges alike in those then get the same
   * decision from this version of the policy, and a caller may reuse it (a PostgreSQL
   * session does, per operation).
   */
  cacheableOn(connection: string): boolean;
  /** Every rule, whether it matched, and each criterion's result. */
  explain(exchange: Exchange): Explanation;
  /** A checker of answer text for the named response rules (a decision's `responseGuards`). */
  responseCheck(names: readonly string[]): (text: string) => ResponseViolation | undefined;
}

interface CompiledRule {
  readonly index: number;
  readonly name: string;
  readonly effect: Effect;
  readonly on: 'request' | 'response';
  readonly message: string | undefined;
  /** Literal connection names, when the rule names only literal connections (for the index). */
  readonly connections: readonly string[] | undefined;
  readonly match: readonly Criterion[];
  readonly when: readonly Criterion[];
  /**
   * An allow rule with obligations and a condition on `tables`: its `when` as it decides
   * whether the obligations apply, reading the names a statement's tables may stand for
   * (a partition of a masked table is masked; it is not allowed by this rule for that).
   */
  readonly obligationsWhen: readonly Criterion[] | undefined;
  readonly obligations: PolicyRuleSpec['obligations'];
}

const effectRank: Record<Effect, number> = { allow: 1, require_approval: 2, deny: 3 };
const effectReason: Record<Effect, string> = { allow: 'rule-allow', require_approval: 'rule-require-approval', deny: 'rule-deny' };

export function compilePolicy(input: readonly AccessRuleSource[] | PolicySource, options: CompileOptions = {}): Policy {
  const source: PolicySource = isAccessList(input) ? { access: input } : input;
  const access = source.access ?? [];
  const timezone = source.timezone ?? 'UTC';
  const specs: PolicyRuleSpec[] = [
    ...access.map(({ connection, groups }): PolicyRuleSpec => ({
      name: `connection-access:${connection}`,
      effect: 'allow',
      on: 'request',
      match: { connections: [connection], groups: [...groups] },
      when: [],
    })),
    ...(source.rules ?? []),
  ];
  checkRuleSet(specs, options, [...access.map(() => undefined), ...(source.origins ?? [])]);
  const rules = specs.map((spec, index) => compileRule(spec, index, timezone));
  // Without limits the hashed object is as before, so such a policy keeps its version.
  const limits = source.limits?.length ? { limits: source.limits } : {};
  const version = createHash('sha256').update(JSON.stringify(isAccessList(input) ? access : { access, rules: source.rules ?? [], timezone, ...limits })).digest('hex').slice(0, 16);

  // Index: rules that name only literal connections are visited for those connections;
  // the others for every exchange. Each list keeps the rules' order.
  const general = rules.filter((r) => r.connections === undefined);
  const byConnection = new Map<string, CompiledRule[]>();
  for (const rule of rules) for (const c of rule.connections ?? []) byConnection.set(c, []);
  for (const [connection, list] of byConnection) list.push(...rules.filter((r) => r.connections === undefined || r.connections.includes(connection)));
  const candidates = (exchange: Exchange) => byConnection.get(exchange.connection) ?? general;
  const responseRules = new Map(rules.filter((r) => r.on === 'response').map((r) => [r.name, r]));
  // A response rule's `when` reads the answer, not the request: only its match counts here.
  const byNameOnly = (rule: CompiledRule) => rule.match.every((c) => c.byName === true) && (rule.on === 'response' || rule.when.length === 0);
  const cacheable = new Map<string, boolean>();
  const detect = options.detectEntities;

  function decide(exchange: Exchange): Decision {
    const ctx = new EvalContext(exchange, detect);
    let best: Effect | undefined;
    let winners: CompiledRule[] = [];
    let applied: CompiledRule[] | undefined;
    for (const rule of candidates(exchange)) {
      if (!allHold(rule.match, ctx)) continue;
      if (rule.on === 'response') {
        (applied ??= []).push(rule);
        continue;
      }
      if (!allHold(rule.when, ctx)) {
        if (rule.obligationsWhen && allHold(rule.obligationsWhen, ctx)) (applied ??= []).push(rule);
        continue;
      }
      if (rule.obligations) (applied ??= []).push(rule);
      if (best === undefined || effectRank[rule.effect] > effectRank[best]) {
        best = rule.effect;
        winners = [rule];
      } else if (rule.effect === best) winners.push(rule);
    }
    if (best === undefined) {
      const who = exchange.identity?.subject ?? 'anonymous caller';
      return { effect: 'deny', rules: ['default-deny'], reason: 'no-rule-allows', message: `Access denied: no rule allows ${who} on connection "${exchange.connection}".`, policyVersion: version };
    }
    // Built with assignments, not spreads: V8 (Node 20) gives every object a spread adds
    // keys to a hidden class of its own, and decisions are read on every exchange.
    const decision: { -readonly [K in keyof Decision]: Decision[K] } = {
      effect: best,
      rules: winners.map((r) => r.name),
      reason: effectReason[best],
      policyVersion: version,
    };
    let message: string | undefined;
    for (const rule of winners) {
      if (rule.message !== undefined) {
        message = rule.message;
        break;
      }
    }
    const obligations = best === 'deny' || !applied ? undefined : mergeObligations(applied);
    if (message !== undefined && best !== 'allow') decision.message = message;
    if (obligations) decision.obligations = obligations;
    return decision;
  }

  return {
    version,
    ruleCount: rules.length,
    ruleNames: policyRuleNames(source),
    decide,
    cacheableOn(connection) {
      let answer = cacheable.get(connection);
      if (answer === undefined) {
        answer = (byConnection.get(connection) ?? general).every(byNameOnly);
        if (cacheable.size < 10_000) cacheable.set(connection, answer);
      }
      return answer;
    },
    explain(exchange) {
      const ctx = new EvalContext(exchange, detect);
      const explained = rules.map((rule): RuleExplanation => {
        const criteria = rule.on === 'response' ? rule.match : [...rule.match, ...rule.when];
        const checks = criteria.map((c) => ({ criterion: c.label, ok: c.test(ctx) }));
        return { rule: rule.name, effect: rule.effect, on: rule.on, matched: checks.every((c) => c.ok), checks };
      });
      return { decision: decide(exchange), rules: explained };
    },
    responseCheck(names) {
      const guards = names.map((n) => responseRules.get(n)).filter((r): r is CompiledRule => r !== undefined);
      if (guards.length === 0) return () => undefined;
      return (text) => {
        const ctx = new EvalContext({ ...answerExchange, facts: { stream: false, text } }, detect);
        for (const rule of guards) {
          if (allHold(rule.when, ctx)) return { rule: rule.name, message: rule.message ?? `The answer was withheld by policy (rule "${rule.name}").` };
        }
        return undefined;
      };
    },
  };
}

/**
 * The rule names a decision of this policy can record: each connection's access rule, the
 * rules (config, files, packs), `default-deny`, and the limits (a refusal names its limit).
 */
export function policyRuleNames(source: PolicySource): string[] {
  return [...(source.access ?? []).map((a) => `connection-access:${a.connection}`), ...(source.rules ?? []).map((r) => r.name), 'default-deny', ...(source.limits ?? []).map((l) => l.name)];
}

/** Deny beats approval beats allow; nothing matched is a deny (fail closed). */
export function combineEffects(effects: readonly Effect[]): Effect {
  if (effects.length === 0) return 'deny';
  let best: Effect = effects[0]!;
  for (const effect of effects) if (effectRank[effect] > effectRank[best]) best = effect;
  return best;
}

const answerExchange: Exchange = { id: 'answer', sessionId: 'answer', protocol: 'http', connection: '', operation: '', startedAt: 0, client: { address: undefined }, facts: { stream: false } };

function isAccessList(input: readonly AccessRuleSource[] | PolicySource): input is readonly AccessRuleSource[] {
  return Array.isArray(input);
}

function allHold(criteria: readonly Criterion[], ctx: EvalContext): boolean {
  for (const c of criteria) if (!c.test(ctx)) return false;
  return true;
}

function compileRule(spec: PolicyRuleSpec, index: number, timezone: string): CompiledRule {
  const connections = spec.match?.connections;
  return {
    index,
    name: spec.name,
    effect: spec.effect,
    on: spec.on,
    message: spec.message,
    connections: connections && isLiteral(connections) ? connections : undefined,
    match: compileMatch(spec.match, timezone),
    when: spec.when.map((condition, i) => compileCondition(condition, i, spec.effect)),
    obligationsWhen: spec.effect === 'allow' && spec.obligations && spec.when.some((c) => (c.fact ?? c.field) === 'tables') ? spec.when.map((condition, i) => compileCondition(condition, i, spec.effect, true)) : undefined,
    obligations: spec.obligations,
  };
}

function mergeObligations(rules: readonly CompiledRule[]): Obligations | undefined {
  const mask: string[] = [];
  const guards: string[] = [];
  let maxResponseBytes: number | undefined;
  for (const rule of rules) {
    if (rule.on === 'response') {
      if (!guards.includes(rule.name)) guards.push(rule.name);
      continue;
    }
    const o = rule.obligations;
    if (!o) continue;
    for (const m of o.mask ?? []) if (!mask.includes(m)) mask.push(m);
    for (const g of o.responseGuards ?? []) if (!guards.includes(g)) guards.push(g);
    if (o.maxResponseBytes !== undefined) maxResponseBytes = Math.min(maxResponseBytes ?? Infinity, o.maxResponseBytes);
  }
  if (mask.length === 0 && guards.length === 0 && maxResponseBytes === undefined) return undefined;
  return {
    ...(mask.length > 0 ? { mask } : {}),
    ...(maxResponseBytes !== undefined ? { maxResponseBytes } : {}),
    ...(guards.length > 0 ? { responseGuards: guards } : {}),
  };
}

/**
 * Checks across rules that the schema cannot see: unique names, references, detector.
 * Every problem is reported, not the first (`config check` lists them all).
 */
function checkRuleSet(specs: readonly PolicyRuleSpec[], options: CompileOptions, origins: readonly (string | undefined)[]): void {
  const seen = new Set<string>();
  const responseNames = new Set(specs.filter((s) => s.on === 'response').map((s) => s.name));
  const errors: PolicyError[] = [];
  specs.forEach((spec, k) => {
    const at = origins[k] === undefined ? '' : `${origins[k]}: `;
    const fail = (message: string) => errors.push(new PolicyError(`${at}${message}`));
    if (spec.name === 'default-deny') fail(`rule "default-deny": the name is reserved`);
    else if (seen.has(spec.name)) fail(`rule "${spec.name}": name: the name is used by another rule (rule names must be unique across config, files and packs)`);
    seen.add(spec.name);
    spec.when.forEach((condition, i) => {
      if (condition.entities !== undefined && options.detectEntities === undefined) fail(`rule "${spec.name}": when[${i}].entities: entity detection is not available in this gateway`);
    });
    for (const guard of spec.obligations?.responseGuards ?? []) {
      if (!responseNames.has(guard)) fail(`rule "${spec.name}": obligations.responseGuards: no response rule (on: response) is named "${guard}"`);
    }
  });
  if (errors.length > 0) throw PolicyError.of(errors);
}
