// The `policy:` config section and the rule model, in one schema shared by the config
// file, policy files (`policy.files`) and the built-in packs (`policy-packs/*.yaml`).
// Unknown keys are refused; a regex that re2 cannot run in linear time (backreferences,
// lookarounds) or cannot parse is refused here, with the rule's name and field.

import RE2 from 're2';
import { z } from 'zod';
import { builtinEntityTypes } from '../detect/index.js';
import { normalizeForKeywords } from '../policy/normalize-text.js';
import { parseDuration, parseSize } from './units.js';
import { secretUrl } from './fields.js';

export const ruleNamePattern = /^[a-z0-9][a-z0-9_.:-]{0,99}$/;
export const packNames = ['secrets-in-prompts', 'prompt-injection', 'bulk-export', 'model-weights'] as const;
export const weekdays = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

const sizeValue = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const bytes = parseSize(value);
  if (bytes === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a size (use e.g. 512KiB, 10MiB, or bytes)` });
    return z.NEVER;
  }
  return bytes;
});

const durationValue = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === undefined || ms < 1000) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration of at least 1s (use e.g. 30s, 1m, 1h)` });
    return z.NEVER;
  }
  return ms;
});

const patterns = z.array(z.string().min(1)).min(1);

export function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

const timeZone = z.string().refine(isTimeZone, 'is not an IANA time zone (e.g. UTC, Europe/Paris)');

const timeWindow = z.strictObject({
  days: z.array(z.enum(weekdays)).min(1).optional(),
  /** "09:00-17:00"; a window that ends before it starts wraps midnight ("22:00-06:00"). */
  hours: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$/, 'must be "HH:MM-HH:MM", e.g. "09:00-17:30"')
    // A window that starts where it ends would never hold: a rule that silently never applies.
    .refine((h) => h.slice(0, 5) !== h.slice(6), 'is an empty window (it starts where it ends); for all day use "00:00-24:00"')
    .refine((h) => h.slice(6) <= '24:00', 'must end at 24:00 at the latest')
    .optional(),
  timezone: timeZone.optional(),
});

/**
 * What an exchange's operation can be: the OpenAI operations, `http.<METHOD> <path>`
 * and `sql.<class>`. A literal entry that is none of them (`embedding`,
 * `chat.completion`, `http.get /models`) is a typo that would make the rule never
 * match, so a deny would silently not deny: refused. A pattern with `*` may match nothing.
 */
const operationName = /^(?:chat\.completions|completions|embeddings|responses|http\.[A-Z]+ \/.*|sql\.[a-z_]+)$/;

/** Whether `name` has the shape of an operation (a search for one that does not is a typo). */
export function isOperationName(name: string): boolean {
  return operationName.test(name);
}
const operationPatterns = z
  .array(
    z
      .string()
      .min(1)
      .refine((entry) => entry.includes('*') || operationName.test(entry), {
        error: (issue) =>
          `no operation is named ${JSON.stringify(issue.input)}: operations are chat.completions, completions, embeddings, responses, http.<METHOD> <path> (e.g. "http.GET /models") and sql.<class> (e.g. "sql.delete"); use * for a pattern`,
      })
      .refine((entry) => !entry.startsWith('http.') || pathNeverMatches(entry.slice(entry.indexOf(' ') + 1)) === undefined, {
        error: (issue) => `${JSON.stringify(issue.input)} can never match: ${pathNeverMatches(String(issue.input).slice(String(issue.input).indexOf(' ') + 1))}`,
      }),
  )
  .min(1);

/**
 * Why a `paths` pattern can never match the path policy sees (the path after
 * /c/<connection>: starting with "/", runs of "/" merged, no trailing "/"), or
 * undefined. `models/*` or `/admin/` would make a deny rule silently not deny.
 */
function pathNeverMatches(pattern: string): string | undefined {
  if (!pattern.startsWith('/') && !pattern.startsWith('*')) return 'policy paths start with "/" (the path after /c/<connection>)';
  if (pattern.includes('//')) return 'policy paths have runs of "/" merged into one';
  if (pattern.length > 1 && pattern.endsWith('/')) return 'policy paths have no trailing "/" (write "/admin", or "/admin/*" for what is under it)';
  return undefined;
}

const pathPatterns = z
  .array(
    z
      .string()
      .min(1)
      .refine((entry) => pathNeverMatches(entry) === undefined, { error: (issue) => `path ${JSON.stringify(issue.input)} can never match: ${pathNeverMatches(String(issue.input))}` }),
  )
  .min(1);

export const matchSchema = z.strictObject({
  subjects: patterns.optional(),
  groups: patterns.optional(),
  kinds: z.array(z.enum(['human', 'service', 'agent'])).min(1).optional(),
  connections: patterns.optional(),
  operations: operationPatterns.optional(),
  models: patterns.optional(),
  methods: z.array(z.string().regex(/^[A-Z]+$/, 'must be an upper-case HTTP method')).min(1).optional(),
  paths: pathPatterns.optional(),
  time: timeWindow.optional(),
});

/**
 * The facts a condition can read (EvalContext.fact). Any other name is refused: a
 * condition on a fact no exchange has never holds, so a misspelt deny rule would
 * silently never deny.
 */
export const factNames = ['text', 'model', 'inputCount', 'bytes', 'method', 'path', 'tables', 'statementClasses', 'risky'] as const;
const factName = z.string().refine((name) => (factNames as readonly string[]).includes(name), { message: `must be one of the facts ${factNames.join(', ')}` });

export const conditionSchema = z
  .strictObject({
    /** An re2 regular expression, searched in the fact (default `text`). */
    regex: z.string().min(1).optional(),
    /** Any of these keywords, after normalisation (case, confusables, spacing). */
    keywords: z.array(z.string()).min(1).optional(),
    /**
     * Any of these built-in entity types, in any case (`email`, `US_SSN` …); kept upper-case,
     * as the detectors name them, so that a rule cannot silently never match.
     */
    entities: z
      .array(z.string().min(1).transform((e) => e.toUpperCase()))
      .min(1)
      .optional(),
    /** A numeric or list fact compared with gt / gte / lt / lte / includes. */
    fact: factName.optional(),
    field: factName.optional(),
    gt: z.number().optional(),
    gte: z.number().optional(),
    lt: z.number().optional(),
    lte: z.number().optional(),
    includes: patterns.optional(),
    /** Inverts the condition. */
    not: z.boolean().default(false),
  })
  .superRefine((c, ctx) => {
    const kinds = (['regex', 'keywords', 'entities', 'fact'] as const).filter((k) => c[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({ code: 'custom', message: 'a condition needs exactly one of regex, keywords, entities or fact' });
      return;
    }
    const comparisons = (['gt', 'gte', 'lt', 'lte', 'includes'] as const).filter((k) => c[k] !== undefined);
    if (c.fact !== undefined && comparisons.length === 0) ctx.addIssue({ code: 'custom', message: 'a fact condition needs gt, gte, lt, lte or includes' });
    if (c.fact === undefined && comparisons.length > 0) ctx.addIssue({ code: 'custom', message: `${comparisons.join(', ')} only go with fact` });
    if (c.fact !== undefined && c.field !== undefined) ctx.addIssue({ code: 'custom', message: 'field goes with regex, keywords or entities; a fact condition names its fact in fact' });
    // Matching is on letters and digits only: a keyword with neither ("---", "!!") would
    // be the empty string, found in every text (an allow rule would allow everything).
    c.keywords?.forEach((k, i) => {
      if (k.trim() === '') ctx.addIssue({ code: 'custom', path: ['keywords', i], message: 'a keyword must not be empty' });
      else if (normalizeForKeywords(k) === '') ctx.addIssue({ code: 'custom', path: ['keywords', i], message: `keyword ${JSON.stringify(k)} has no letter or digit (keywords match on letters and digits only; use regex for punctuation)` });
    });
    c.entities?.forEach((e, i) => {
      if (!(builtinEntityTypes as readonly string[]).includes(e)) {
        ctx.addIssue({ code: 'custom', path: ['entities', i], message: `unknown entity type "${e}" (built-in: ${builtinEntityTypes.join(', ')})` });
      }
    });
  });

const obligationsSchema = z.strictObject({
  mask: z.array(z.string().min(1)).min(1).optional(),
  maxResponseBytes: sizeValue.optional(),
  responseGuards: z.array(z.string().regex(ruleNamePattern)).min(1).optional(),
});

export const ruleSchema = z
  .strictObject({
    name: z.string().regex(ruleNamePattern, 'must be lower-case letters, digits, "-", "_", ".", ":" (at most 100)'),
    description: z.string().optional(),
    effect: z.enum(['allow', 'deny', 'require_approval']),
    /** `request` rules decide; `response` rules check the answer of the exchanges they match. */
    on: z.enum(['request', 'response']).default('request'),
    /** Shown to the caller when this rule denies. */
    message: z.string().min(1).max(500).optional(),
    match: matchSchema.optional(),
    when: z.array(conditionSchema).default([]),
    obligations: obligationsSchema.optional(),
  })
  .superRefine((rule, ctx) => {
    rule.when.forEach((condition, i) => {
      if (condition.regex === undefined) return;
      try {
        new RE2(condition.regex, 'u');
      } catch (error) {
        ctx.addIssue({ code: 'custom', path: ['when', i, 'regex'], message: `rule "${rule.name}": re2 refuses the pattern ${JSON.stringify(condition.regex)}: ${(error as Error).message} (re2 runs in linear time and has no backreferences or lookarounds)` });
      }
    });
    if (rule.on === 'response') {
      if (rule.effect !== 'deny') ctx.addIssue({ code: 'custom', path: ['effect'], message: `rule "${rule.name}": a response rule can only deny` });
      rule.when.forEach((condition, i) => {
        if (condition.fact !== undefined || (condition.field ?? 'text') !== 'text') {
          ctx.addIssue({ code: 'custom', path: ['when', i], message: `rule "${rule.name}": a response rule checks the answer text only (regex, keywords or entities, without field)` });
        }
      });
    }
  });

/** A policy file (`policy.files`) and a built-in pack have this shape. */
export const ruleFileSchema = z.strictObject({
  description: z.string().optional(),
  rules: z.array(ruleSchema).default([]),
});

export const limitRuleSchema = z
  .strictObject({
    name: z.string().regex(ruleNamePattern, 'must be lower-case letters, digits, "-", "_", ".", ":" (at most 100)'),
    description: z.string().optional(),
    /** Whose counter: the caller, each of the caller's (matched) groups, or the connection. */
    per: z.enum(['identity', 'group', 'connection']).default('identity'),
    match: matchSchema.optional(),
    window: durationValue.default(60_000),
    requests: z.number().int().positive().optional(),
    tokens: z.number().int().positive().optional(),
    embeddingInputs: z.number().int().positive().optional(),
    bytes: sizeValue.optional(),
    concurrent: z.number().int().positive().optional(),
    maxRequestBytes: sizeValue.optional(),
    maxResponseBytes: sizeValue.optional(),
    message: z.string().min(1).max(500).optional(),
  })
  .refine(
    (l) => [l.requests, l.tokens, l.embeddingInputs, l.bytes, l.concurrent, l.maxRequestBytes, l.maxResponseBytes].some((v) => v !== undefined),
    'a limit needs at least one of requests, tokens, embeddingInputs, bytes, concurrent, maxRequestBytes, maxResponseBytes',
  );

export interface PolicySchemaContext {
  /** Resolves a path relative to the config file. */
  readonly path: z.ZodType<string, string>;
  /** Resolves a secret reference. */
  readonly secret: z.ZodType<string, string>;
}

export function buildPolicySchema({ path, secret }: PolicySchemaContext) {
  return z
    .strictObject({
      rules: z.array(ruleSchema).default([]),
      files: z.array(path).default([]),
      packs: z.array(z.enum(packNames)).default([]),
      /** Default time zone of `match.time` windows. */
      timezone: timeZone.default('UTC'),
      limits: z
        .strictObject({
          store: z.enum(['memory', 'redis']).default('memory'),
          redis: z.strictObject({ url: secretUrl(secret, ['redis', 'rediss'], 'redis://:password@cache:6379/0'), keyPrefix: z.string().regex(/^[A-Za-z0-9:_.-]{1,100}$/).default('gatehouse:') }).optional(),
          rules: z.array(limitRuleSchema).default([]),
        })
        .prefault({})
        .refine((l) => l.store !== 'redis' || l.redis !== undefined, { message: 'store "redis" needs redis.url', path: ['redis'] })
        .superRefine((l, ctx) => {
          // Counters are keyed by the limit's name: two limits of one name would share them.
          const first = new Map<string, number>();
          l.rules.forEach((rule, i) => {
            const at = first.get(rule.name);
            if (at !== undefined) ctx.addIssue({ code: 'custom', path: ['rules', i, 'name'], message: `duplicate limit name "${rule.name}" (also limits.rules[${at}]; limits count by name, so they would share counters)` });
            else first.set(rule.name, i);
          });
        }),
    })
    .prefault({});
}

export type PolicyRuleSpec = z.output<typeof ruleSchema>;
export type MatchSpec = z.output<typeof matchSchema>;
export type ConditionSpec = z.output<typeof conditionSchema>;
export type LimitRuleSpec = z.output<typeof limitRuleSchema>;
export type PolicyConfig = z.output<ReturnType<typeof buildPolicySchema>>;
