// The protocol-neutral data every stage works on. Adapters build an Exchange from wire
// bytes; identity, policy and audit read it and never see a protocol module. All of
// it is immutable: a stage that adds something returns a new value.

import type { UnreadAnswerFormat } from './answer-summary.js';

export type IdentityKind = 'human' | 'service' | 'agent';
export type AuthMethod = 'api_key' | 'oidc' | 'gateway_token' | 'session';

export interface Identity {
  /** Stable subject: for an API key, `key:<name>`. */
  readonly subject: string;
  readonly kind: IdentityKind;
  readonly groups: readonly string[];
  readonly method: AuthMethod;
  /** The credential's id (never its secret), for records and revocation. */
  readonly credentialId: string;
  /** For a Gatehouse token: the credential it was exchanged for (revoking that revokes it too). */
  readonly exchangedFrom?: string | undefined;
  /** For a Gatehouse token: the kid of the gateway key that signed it (revoking the key revokes it). */
  readonly signingKeyId?: string | undefined;
  /** Who vouched for the identity (an OIDC issuer URL, the gateway's token issuer). */
  readonly issuer?: string | undefined;
  /** When the credential was issued / expires (epoch ms), where it says. */
  readonly issuedAt?: number | undefined;
  readonly expiresAt?: number | undefined;
  /** What a scoped Gatehouse token may reach; absent means "as policy allows". */
  readonly scope?: IdentityScope | undefined;
}

export interface IdentityScope {
  readonly connections: readonly string[];
  /** Operations (`chat.completions`, `http.GET /v1/models` …); `*` or absent means any. */
  readonly operations?: readonly string[] | undefined;
}

/** What inspection found in the request, protocol-neutral. */
export interface RequestFacts {
  readonly model?: string | undefined;
  readonly stream: boolean;
  /** Prompt / input text, for guardrails and the recording. */
  readonly text?: string | undefined;
  /**
   * Why the prompt text could not be read (a multipart body whose parts cannot be
   * found): a rule that reads `text` then refuses the request instead of seeing none.
   */
  readonly textUnreadable?: string | undefined;
  /** Number of inputs (embeddings batch size). */
  readonly inputCount?: number | undefined;
  /** HTTP method and path (after the connection prefix, without the query), for policy. */
  readonly method?: string | undefined;
  readonly path?: string | undefined;
  /** Size of the request body in bytes. */
  readonly bytes?: number | undefined;
  /** SQL statements (PostgreSQL connections): classes, tables touched, risky shapes. */
  readonly sql?: SqlFacts | undefined;
}

export interface SqlFacts {
  /** Statement classes: `select`, `insert`, `update`, `delete`, `ddl`, `drop` … */
  readonly classes: readonly string[];
  /** Tables (and views) the statement names, `schema.table` when qualified. */
  readonly tables: readonly string[];
  /**
   * Other names those tables may stand for (PostgreSQL: a partition's or inheritance
   * child's ancestors, `orders` for `public.orders`, `hr.salaries` for `salaries`): a
   * condition on `tables` reads them too where that makes its rule stricter.
   */
  readonly tablesMayBe?: readonly string[] | undefined;
  readonly text: string;
  /** Risky shapes, kebab-case: `delete-without-where`, `update-without-where` … */
  readonly risky: readonly string[];
}

export interface ClientInfo {
  readonly address: string | undefined;
  readonly userAgent?: string | undefined;
}

export interface Exchange {
  readonly id: string;
  readonly sessionId: string;
  readonly protocol: 'http' | 'postgres';
  readonly connection: string;
  /** `chat.completions`, `embeddings`, `http.GET /v1/models` … */
  readonly operation: string;
  readonly startedAt: number;
  readonly client: ClientInfo;
  readonly facts: RequestFacts;
  readonly identity?: Identity | undefined;
  /** Set by the approvals stage: the review that let this exchange pass (or refused it). */
  readonly approval?: ExchangeApproval | undefined;
}

/** How a `require_approval` exchange got through: held until approved, a retry with an approval, or a grant. */
export interface ExchangeApproval {
  readonly reviewId: string;
  readonly via: 'held' | 'retry' | 'grant';
}

export type Effect = 'allow' | 'deny' | 'require_approval';

export interface Decision {
  readonly effect: Effect;
  /** Names of the rules that produced the effect, for the record and the caller. */
  readonly rules: readonly string[];
  /** Stable kebab-case reason. */
  readonly reason: string;
  /** Message for the caller when denied. */
  readonly message?: string | undefined;
  readonly policyVersion: string;
  /** What must happen for the exchange to proceed as allowed (masking, caps …). */
  readonly obligations?: Obligations | undefined;
}

/**
 * Duties a decision attaches to an allowed exchange. Stages downstream of policy
 * (masking, response guardrails, limits) read them; none of them decides anything.
 */
export interface Obligations {
  /** Masking profiles (by name, from config `masking.profiles`) to apply. */
  readonly mask?: readonly string[] | undefined;
  /** Largest answer allowed, in bytes. */
  readonly maxResponseBytes?: number | undefined;
  /** Response-side guardrail rules (by name) the answer is checked against. */
  readonly responseGuards?: readonly string[] | undefined;
}

/** The response side of an exchange, as the recorder keeps it. */
export interface ExchangeOutcome {
  readonly status: number | undefined;
  readonly complete: boolean;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly ttfbMs: number | undefined;
  readonly durationMs: number;
  readonly responseHeaders?: Readonly<Record<string, string>> | undefined;
  readonly responseBody?: string | undefined;
  readonly responseTruncated?: boolean | undefined;
  /** Assistant text, reassembled from a streamed answer where there was one. */
  readonly responseText?: string | undefined;
  readonly usage?: TokenUsage | undefined;
  /**
   * Set when responseText and usage were not read on the relaying thread: responseBody
   * holds the whole answer in this format, and the recorder reads them from it.
   */
  readonly unreadAnswer?: UnreadAnswerFormat | undefined;
  readonly errorCode?: string | undefined;
  readonly errorDetail?: string | undefined;
  /** Entities masked in this exchange (request scrubbing and answer), by type. */
  readonly maskCounts?: Readonly<Record<string, number>> | undefined;
  /** The unmasked answer body when masking changed `responseBody` (audit.raw only). */
  readonly rawResponseBody?: string | undefined;
  /** When each piece of the answer was relayed: [ms since start, bytes], bounded (audit replay). */
  readonly chunkTimings?: readonly (readonly [number, number])[] | undefined;
}

export interface TokenUsage {
  readonly promptTokens?: number | undefined;
  readonly completionTokens?: number | undefined;
  readonly totalTokens?: number | undefined;
}

/** The request side as recorded (headers already stripped of secrets). */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | undefined;
  readonly truncated: boolean;
  /** The unmasked body when masking changed `body`; sealed into the recording only with audit.raw. */
  readonly rawBody?: string | undefined;
}
