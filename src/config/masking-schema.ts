// The `masking` section: named profiles that say which entities to mask, how, and in
// which direction; connections name their default profiles in `connections[].masking`
// and policy decisions may add more (`obligations.mask`). Custom entity patterns are
// compiled with re2 here, so a pattern re2 refuses (backreferences, lookaround) fails
// the config at load, naming its path.

import RE2 from 're2';
import { z } from 'zod';
import { builtinEntityTypes } from '../detect/index.js';
import { parseSize } from './units.js';

const entityName = /^[A-Z][A-Z0-9_]{0,62}$/;
const minHashKeyLength = 16;

export function buildMaskingSchema(secret: z.ZodType<string, string>) {
  const pattern = z.string().min(1).superRefine((value, ctx) => {
    try {
      new RE2(value, 'u');
    } catch (error) {
      // re2's own reason ("missing ]", "invalid repetition size: {1001}") says what to fix.
      ctx.addIssue({ code: 'custom', message: `is not a valid re2 pattern (${(error as Error).message}; re2 has no backreferences or lookaround)` });
    }
  });

  // A path that matches no field would make its profile mask nothing in JSON answers,
  // silently: `choices[0].message.content` (an index) or `messages[*]` are refused here.
  const fieldPath = z.string().superRefine((value, ctx) => {
    const problem = fieldPathProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: `${problem} (a dotted field path like choices[].message.content, user.*, **.email)` });
  });

  const customEntity = z.strictObject({
    name: z.string().regex(entityName, 'must be UPPER_SNAKE_CASE (e.g. EMPLOYEE_ID)'),
    pattern,
    validator: z.enum(['luhn', 'mod97']).optional(),
    context: z.array(z.string().min(1)).optional(),
    score: z.number().min(0).max(1).default(0.8),
    maxLength: z.number().int().min(1).max(4096).default(64),
  });

  // Terms (type DENY_LIST) or named lists; each form's own errors name the item, where
  // a union said only "does not match any accepted form".
  const term = z.string().min(1, 'a term must not be empty');
  const namedList = z.strictObject({ name: z.string().regex(entityName, 'must be UPPER_SNAKE_CASE (e.g. CODENAME)'), terms: z.array(term).min(1) });
  const denyList = z
    .array(z.unknown())
    .superRefine((items, ctx) => {
      const named = items.some((item) => typeof item !== 'string');
      items.forEach((item, i) => {
        const result = (named ? namedList : term).safeParse(item);
        if (result.success) return;
        for (const issue of result.error.issues) {
          // Worded as load.ts words the issues it formats itself.
          const message = named && typeof item === 'string' ? 'is a term, but other items are { name, terms } lists: use one form' : issue.code === 'unrecognized_keys' ? `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}` : issue.message;
          ctx.addIssue({ code: 'custom', path: [i, ...issue.path] as (string | number)[], message });
        }
      });
    })
    .transform((items): Array<{ name: string; terms: string[] }> => (items.every((item) => typeof item === 'string') ? (items.length === 0 ? [] : [{ name: 'DENY_LIST', terms: items as string[] }]) : (items as Array<{ name: string; terms: string[] }>)));

  const embeddings = z.strictObject({
    mode: z.enum(['block', 'round', 'float16', 'noise']),
    decimals: z.number().int().min(0).max(8).default(2),
    noise: z.number().min(0).max(10).default(0.1),
  });

  const profile = z
    .strictObject({
      // [] masks no text: a profile for embeddings only
      // Any case (`email`), as in policy conditions; kept upper-case, as detectors name types.
      entities: z.array(z.string().min(1).transform((e) => e.toUpperCase())).optional(),
      operator: z.enum(['redact', 'partial', 'hash', 'drop']).default('redact'),
      keepLast: z.number().int().min(0).max(16).default(4),
      hashKey: secret.optional(),
      fields: z.array(fieldPath).min(1).optional(),
      applyTo: z.enum(['response', 'request', 'both']).default('response'),
      customEntities: z.array(customEntity).default([]),
      denyList: denyList.default([]),
      allowList: z.array(z.string().min(1)).default([]),
      minScore: z.number().min(0).max(1).default(0.5),
      embeddings: embeddings.optional(),
    })
    .superRefine((p, ctx) => {
      if (p.operator === 'hash' && p.hashKey === undefined) ctx.addIssue({ code: 'custom', path: ['hashKey'], message: 'is required when operator is "hash" (a secret reference, e.g. ${MASK_HASH_KEY})' });
      // One value and its hash (an analyst's own address) are enough to try short keys;
      // with the key, phone numbers and SSNs are few enough to hash them all. ('' is a
      // secret a store-only command did not resolve.)
      if (p.hashKey !== undefined && p.hashKey !== '' && p.hashKey.length < minHashKeyLength) {
        ctx.addIssue({ code: 'custom', path: ['hashKey'], message: `is ${p.hashKey.length} characters; a hash key needs at least ${minHashKeyLength} (e.g. openssl rand -hex 32), or it can be guessed from one known value and its hash` });
      }
      const known = new Set<string>([...builtinEntityTypes, ...p.customEntities.map((c) => c.name), ...p.denyList.map((d) => d.name)]);
      p.entities?.forEach((e, i) => {
        if (!known.has(e)) ctx.addIssue({ code: 'custom', path: ['entities', i], message: `unknown entity type "${e}" (built-in: ${builtinEntityTypes.join(', ')}; or a customEntities/denyList name)` });
      });
    });

  return z
    .strictObject({
      profiles: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'profile names are lower-case letters, digits, "-" or "_"'), profile).default({}),
      /** Largest non-streamed answer buffered for masking (JSON bodies are masked whole). */
      maxBufferBytes: z
        .union([z.string(), z.number()])
        .transform((value, ctx) => {
          const bytes = parseSize(value);
          if (bytes === undefined || bytes < 1024) {
            ctx.addIssue({ code: 'custom', message: `"${value}" is not a size of at least 1KiB (use e.g. 16MiB, or bytes)` });
            return z.NEVER;
          }
          return bytes;
        })
        .default(16 * 1024 * 1024),
    })
    .prefault({});
}

/** Each segment of a field path: a key, `*` or `**`, then any number of `[]` (each array element). */
const fieldSegment = /^(?:\*\*|\*|[A-Za-z0-9_-]*)(?:\[\])*$/;

/** Why `path` is not a field path that json-masker.ts can match, or undefined when it is. */
export function fieldPathProblem(path: string): string | undefined {
  if (path === '') return 'is empty';
  for (const segment of path.split('.')) {
    if (segment === '') return `"${path}" has an empty segment (two dots, or a dot at an end)`;
    if (fieldSegment.test(segment)) continue;
    const index = /\[([^\]]*)\]/.exec(segment);
    if (index && index[1] !== '') return `"${path}": "[${index[1]}]" is not supported; "[]" stands for every element of an array`;
    return `"${path}": "${segment}" is not a key, "*", "**" or a key followed by "[]"`;
  }
  return undefined;
}

/** `connections[i].masking` must name configured profiles. */
export function maskingReferenceIssues(config: { masking: { profiles: Record<string, unknown> }; connections: readonly { type: string; masking?: unknown }[] }, ctx: z.RefinementCtx, checked: (i: number) => boolean = () => true): void {
  config.connections.forEach((c, i) => {
    if (!checked(i)) return;
    // A PostgreSQL connection names its profiles in masking.profiles, beside its column rules.
    const postgres = c.type === 'postgres';
    const names = postgres ? (c.masking as { profiles?: unknown } | undefined)?.profiles : c.masking;
    if (!Array.isArray(names)) return;
    (names as readonly string[]).forEach((name, j) => {
      const path = postgres ? ['connections', i, 'masking', 'profiles', j] : ['connections', i, 'masking', j];
      if (!(name in config.masking.profiles)) ctx.addIssue({ code: 'custom', path, message: `no masking profile named "${name}" in masking.profiles` });
    });
  });
}

/**
 * Names in `names` that `masking.profiles` does not define — for config sections that
 * refer to profiles (policy obligations), to report at load with their own path.
 */
export function unknownMaskingProfiles(names: readonly string[], masking: { profiles: Record<string, unknown> }): string[] {
  return names.filter((name) => !(name in masking.profiles));
}
