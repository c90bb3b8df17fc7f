// Config of a `type: postgres` connection: its own listener, the database it reaches
// with a credential the caller never sees, TLS on both sides, limits and masking.
// With `via: agent:<name>` the agent's config holds the database (address, TLS and,
// optionally, the credential): see docs/agent.md.

import { z } from 'zod';
import { viaPattern } from './agents-schema.js';
import { timerDuration } from './fields.js';

export interface PostgresSchemaParts {
  readonly text: z.ZodType<string, string>;
  readonly secret: z.ZodType<string, string>;
  readonly size: z.ZodType<number, string | number>;
  readonly listen: z.ZodType<{ host: string; port: number }, unknown>;
  readonly groupList: z.ZodType<string[], string[]>;
  readonly name: z.ZodType<string, string>;
}

export function buildPostgresConnectionSchema(parts: PostgresSchemaParts) {
  const { text, secret, size, listen, groupList, name } = parts;
  return z.strictObject({
    name,
    type: z.literal('postgres'),
    description: z.string().optional(),
    /** The listener clients connect to with psql, drivers, ORMs. */
    listen,
    /** Certificate offered on SSLRequest; default: `gateway.tls`. */
    serverTls: z.strictObject({ cert: secret, key: secret }).optional(),
    /** Accept sessions without TLS (the password is then sent in clear): e.g. on loopback. */
    allowPlaintext: z.boolean().default(false),
    target: text.pipe(
      z
        .url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres://host:port/dbname URL' })
        // These run after a failed URL check too: a value that is no URL at all must not throw.
        .refine((u) => {
          const url = URL.canParse(u) ? new URL(u) : undefined;
          return url === undefined || (url.username === '' && url.password === '');
        }, 'must not carry a user or password: put them in credential')
        .refine((u) => !URL.canParse(u) || new URL(u).pathname.length > 1, 'must name the database: postgres://host:port/dbname'),
    ),
    /** `agent:<name>`: the database is reached through that egress-only agent; load.ts fills in a placeholder target. */
    via: z.string().regex(viaPattern, 'must be agent:<name>').optional(),
    /** Required without `via`; with it, optional (sent per session inside the tunnel; the agent's own wins). */
    credential: z.strictObject({ user: text.pipe(z.string().min(1)), secret }).optional(),
    tls: z
      .strictObject({ mode: z.enum(['disable', 'require', 'verify-full']).default('verify-full'), ca: secret.optional() })
      .prefault({}),
    timeouts: z
      .strictObject({
        connect: timerDuration(1, 'with 0 every login to the database would time out at once').default(10_000),
        login: timerDuration(1, "with 0 every client's login would time out at once").default(30_000),
      })
      .prefault({}),
    limits: z
      .strictObject({
        maxRows: z.number().int().min(1).optional(),
        // 0 is not "no limit" (as PostgreSQL's statement_timeout): leave the key out for that.
        statementTimeout: timerDuration(1, 'leave statementTimeout out for no limit (0 would cancel every statement at once)').optional(),
        maxMessageBytes: size.default(1024 * 1024),
      })
      .prefault({}),
    masking: z
      .strictObject({
        // `dob: null` unquoted is YAML's null, not the string: it was refused with "expected one
        // of … "null"", naming the very word written. Read as the operator it spells.
        columns: z.record(z.string().min(1), z.preprocess((v) => (v === null ? 'null' : v), z.enum(['redact', 'partial', 'null']))).default({}),
        /** Masking profiles (masking.profiles) over result values, COPY rows and the recorded statements. */
        profiles: z.array(z.string().min(1)).default([]),
      })
      .prefault({}),
    access: z.strictObject({ groups: groupList }),
  });
}
