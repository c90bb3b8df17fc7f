// Turns a rule's `match` and `when` into criteria: small closures over an EvalContext,
// each with a label that `explain` prints. Matching:
// - subjects, groups, connections, operations, models, paths: globs (`*`), any of;
// - kinds, methods: exact, any of;
// - time: day of week and "HH:MM-HH:MM" in a time zone (end exclusive, may wrap midnight);
// - regex: re2 (linear time) over a text fact, raw text;
// - keywords: any keyword within the normalised text (normalize-text.ts);
// - entities: any of the entity types the injected detector finds;
// - fact: numeric comparisons (all given must hold) or `includes` (any element matches).
// An absent fact fails its condition (before `not` inverts it).
// - a condition on `tables` (fact, or the field of regex/keywords/entities) of a
//   statement whose tables are unknown (risky `unknown-tables`: DO, CALL, routine bodies,
//   user-defined functions, SQL run from a string) holds in a deny or require_approval
//   rule and fails in an allow rule, whatever `not` says: the statement may touch any
//   table, so no table rule may let it through (fail closed);
// - a condition on `tables` also reads the names a statement's tables may stand for
//   (SqlFacts.tablesMayBe: a partition's ancestors, `orders` for `public.orders`) where
//   that makes its rule stricter: in a deny or require_approval rule (and in an allow
//   rule's obligations) when it holds on a name, in an allow rule when `not` fails on
//   one; an allow rule is never widened by them.

import RE2 from 're2';
import type { ConditionSpec, MatchSpec } from '../config/policy-schema.js';
import { weekdays } from '../config/policy-schema.js';
import { wideTables, type EvalContext } from './eval-context.js';
import { compileGlobs } from './glob.js';
import { normalizeForKeywords } from './normalize-text.js';

export interface Criterion {
  readonly label: string;
  /**
   * Reads only the exchange's connection, identity, operation, model, method and path:
   * not the time, not a fact. Decisions on such criteria alone may be reused
   * (Policy.cacheableOn).
   */
  readonly byName?: true;
  test(ctx: EvalContext): boolean;
}

const list = (values: readonly string[]) => `[${values.join(', ')}]`;

export function compileMatch(match: MatchSpec | undefined, defaultTimeZone: string): Criterion[] {
  if (!match) return [];
  const criteria: Criterion[] = [];
  if (match.connections) {
    const m = compileGlobs(match.connections);
    criteria.push({ byName: true, label: `connection in ${list(match.connections)}`, test: (ctx) => m(ctx.exchange.connection) });
  }
  if (match.subjects) {
    const m = compileGlobs(match.subjects);
    criteria.push({ byName: true, label: `subject in ${list(match.subjects)}`, test: (ctx) => ctx.exchange.identity !== undefined && m(ctx.exchange.identity.subject) });
  }
  if (match.groups) {
    const m = compileGlobs(match.groups);
    criteria.push({ byName: true, label: `any group in ${list(match.groups)}`, test: (ctx) => ctx.exchange.identity?.groups.some(m) ?? false });
  }
  if (match.kinds) {
    const kinds = new Set<string>(match.kinds);
    criteria.push({ byName: true, label: `kind in ${list(match.kinds)}`, test: (ctx) => ctx.exchange.identity !== undefined && kinds.has(ctx.exchange.identity.kind) });
  }
  if (match.operations) {
    const m = compileGlobs(match.operations);
    criteria.push({ byName: true, label: `operation in ${list(match.operations)}`, test: (ctx) => m(ctx.exchange.operation) });
  }
  if (match.models) {
    // In any case and without surrounding spaces: targets that resolve `GPT-4` or ` gpt-4`
    // as gpt-4 (case-insensitive registries, routers that trim) must not pass a rule on it.
    const m = compileGlobs(match.models.map((pattern) => pattern.trim().toLowerCase()));
    criteria.push({ byName: true, label: `model in ${list(match.models)}`, test: (ctx) => ctx.exchange.facts.model !== undefined && m(ctx.exchange.facts.model.trim().toLowerCase()) });
  }
  if (match.methods) {
    const methods = new Set(match.methods);
    criteria.push({ byName: true, label: `method in ${list(match.methods)}`, test: (ctx) => ctx.exchange.facts.method !== undefined && methods.has(ctx.exchange.facts.method) });
  }
  if (match.paths) {
    const m = compileGlobs(match.paths);
    criteria.push({ byName: true, label: `path in ${list(match.paths)}`, test: (ctx) => ctx.exchange.facts.path !== undefined && m(ctx.exchange.facts.path) });
  }
  if (match.time) criteria.push(compileTime(match.time, defaultTimeZone));
  return criteria;
}

function compileTime(time: NonNullable<MatchSpec['time']>, defaultTimeZone: string): Criterion {
  const zone = time.timezone ?? defaultTimeZone;
  const days = time.days ? new Set(time.days.map((d) => weekdays.indexOf(d))) : undefined;
  let hours: { from: number; to: number } | undefined;
  if (time.hours) {
    const [from, to] = time.hours.split('-').map((hm) => Number(hm.slice(0, 2)) * 60 + Number(hm.slice(3, 5))) as [number, number];
    hours = { from, to };
  }
  const label = `time ${[time.days?.join(','), time.hours].filter(Boolean).join(' ')} ${zone}`;
  return {
    label,
    test(ctx) {
      const { day, minute } = ctx.localTime(zone);
      if (hours && hours.from > hours.to) {
        // Wraps midnight: the part after midnight belongs to the previous day's window.
        if (minute >= hours.from) return days === undefined || days.has(day);
        if (minute < hours.to) return days === undefined || days.has((day + 6) % 7);
        return false;
      }
      if (days && !days.has(day)) return false;
      return hours === undefined || (minute >= hours.from && minute < hours.to);
    },
  };
}

/** `forObligations`: the condition as it decides whether an allow rule's obligations apply (stricter when it holds more). */
export function compileCondition(condition: ConditionSpec, index: number, effect: string = 'deny', forObligations = false): Criterion {
  const inner = compileConditionBody(condition);
  const label = `when[${index}] ${condition.not ? 'not ' : ''}${inner.label}`;
  if ((condition.fact ?? condition.field) !== 'tables') return { label, test: condition.not ? (ctx: EvalContext) => !inner.test(ctx) : inner.test };
  const restrictive = effect !== 'allow' || forObligations;
  // Holding on more names is stricter unless `not` inverts it.
  const wide = restrictive !== (condition.not === true);
  const body = wide ? compileConditionBody(condition.fact !== undefined ? { ...condition, fact: wideTables as 'tables' } : { ...condition, field: wideTables as 'tables' }) : inner;
  const test = condition.not ? (ctx: EvalContext) => !body.test(ctx) : body.test;
  return { label, test: (ctx) => (tablesUnknown(ctx) ? restrictive : test(ctx)) };
}

function tablesUnknown(ctx: EvalContext): boolean {
  return ctx.exchange.facts.sql?.risky.includes('unknown-tables') ?? false;
}

function compileConditionBody(condition: ConditionSpec): Criterion {
  const field = condition.field ?? 'text';
  if (condition.regex !== undefined) {
    const regex = new RE2(condition.regex, 'u');
    return {
      label: `regex ${JSON.stringify(condition.regex)} in ${field}`,
      test(ctx) {
        const utf8 = ctx.utf8(field);
        if (utf8 !== undefined) return regex.test(utf8);
        const value = ctx.fact(field);
        if (Array.isArray(value)) return value.some((v) => typeof v === 'string' && regex.test(v));
        return false;
      },
    };
  }
  if (condition.keywords !== undefined) {
    // One scan for all of a rule's keywords. Normalised keywords are letters and digits
    // only, so this alternation of literals has no quantifier and cannot backtrack
    // catastrophically: its cost is bounded by text length × keyword length.
    const keywords = [...new Set(condition.keywords.map(normalizeForKeywords).filter((k) => k !== ''))];
    const any = new RegExp(keywords.map(escapeRegExp).join('|'));
    return {
      label: `keywords ${list(condition.keywords)} in ${field}`,
      test(ctx) {
        const text = ctx.normalizedText(field);
        return text !== undefined && any.test(text);
      },
    };
  }
  if (condition.entities !== undefined) {
    const wanted = condition.entities;
    return { label: `entities ${list(wanted)} in ${field}`, test: (ctx) => { const found = ctx.entities(field); return wanted.some((e) => found.has(e)); } };
  }
  const fact = condition.fact!;
  const checks: Array<[string, (n: number) => boolean]> = [];
  if (condition.gt !== undefined) { const v = condition.gt; checks.push([`> ${v}`, (n) => n > v]); }
  if (condition.gte !== undefined) { const v = condition.gte; checks.push([`>= ${v}`, (n) => n >= v]); }
  if (condition.lt !== undefined) { const v = condition.lt; checks.push([`< ${v}`, (n) => n < v]); }
  if (condition.lte !== undefined) { const v = condition.lte; checks.push([`<= ${v}`, (n) => n <= v]); }
  const includes = condition.includes ? compileGlobs(condition.includes) : undefined;
  const label = `${fact} ${[...checks.map(([l]) => l), ...(condition.includes ? [`includes any of ${list(condition.includes)}`] : [])].join(' and ')}`;
  return {
    label,
    test(ctx) {
      const value = ctx.fact(fact);
      if (checks.length > 0 && (typeof value !== 'number' || !checks.every(([, check]) => check(value)))) return false;
      if (includes) {
        if (typeof value === 'string') return includes(value);
        if (Array.isArray(value)) return value.some((v) => typeof v === 'string' && includes(v));
        return false;
      }
      return true;
    },
  };
}

function escapeRegExp(literal: string): string {
  return literal.replace(/[\\^$.*+?()[\]{}|\/-]/g, '\\$&');
}
