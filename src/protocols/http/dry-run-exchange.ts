// Builds the Exchange the data plane would build for a request, without a socket:
// for policy dry runs (`gatehouse policy check`, `POST /api/policy/check`). The facts
// come from the same decoders as live traffic, so a dry run decides as the gateway would.

import type { Exchange, IdentityKind } from '../../exchange/index.js';
import { GatehouseError } from '../../errors/index.js';
import { policyPath } from './connection.js';
import { httpOperation, openaiFacts, openaiOperation } from './openai-request.js';

export interface DryRunInput {
  readonly subject: string;
  readonly groups: readonly string[];
  readonly kind: IdentityKind;
  readonly connection: string;
  /** A postgres connection takes its operation (`sql.select` …) from `operation`. */
  readonly connectionType: 'openai' | 'http' | 'postgres';
  /** Overrides the operation derived from method and path. */
  readonly operation?: string | undefined;
  readonly method?: string | undefined;
  /** Path after /c/<connection>, e.g. /chat/completions. */
  readonly path?: string | undefined;
  /**
   * The request body. Undefined (no `--request`, no `"request"`): a request whose body is
   * not known, so no model or text for rules to read; the access rules still decide. An
   * empty buffer is an empty body, refused as the gateway refuses it.
   */
  readonly body?: Buffer | undefined;
  /** The body's Content-Type: a multipart body (a transcription, an upload) is read part by part, as live. */
  readonly contentType?: string | undefined;
  /** When the request happens (time windows); default now. */
  readonly at?: number | undefined;
}

const pathOfOperation: Readonly<Record<string, string>> = {
  'chat.completions': '/chat/completions',
  completions: '/completions',
  embeddings: '/embeddings',
  responses: '/responses',
};

export function dryRunExchange(input: DryRunInput): Exchange {
  const body = input.body ?? Buffer.alloc(0);
  // The path as the data plane gives it to policy (decoded, `//` merged), or its refusal.
  const given = input.path ?? (input.operation ? pathOfOperation[input.operation] : undefined) ?? (input.connectionType === 'openai' ? '/chat/completions' : '/');
  const normalized = policyPath(given);
  if ('error' in normalized) throw new GatehouseError('invalid_path', { message: normalized.error });
  const path = normalized.path;
  const method = input.method ?? (body.length > 0 || input.connectionType === 'openai' ? 'POST' : 'GET');
  const derived = input.connectionType === 'openai' ? openaiOperation(method, path) : httpOperation(method, path);
  const operation = input.operation ?? derived;
  const base = input.connectionType === 'openai' && input.body !== undefined ? openaiFacts(operation, body, input.contentType) : { stream: false };
  return {
    id: 'dry-run',
    sessionId: 'dry-run',
    protocol: 'http',
    connection: input.connection,
    operation,
    startedAt: input.at ?? Date.now(),
    client: { address: undefined },
    facts: { ...base, method, path, bytes: body.length },
    identity: { subject: input.subject, kind: input.kind, groups: input.groups, method: 'api_key', credentialId: 'dry-run' },
  };
}
