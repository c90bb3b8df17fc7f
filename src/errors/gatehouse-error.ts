import { errorRegistry, type ErrorCode } from './registry.js';

export interface GatehouseErrorOptions {
  /** Overrides the registry's public message (e.g. a rule's own message). */
  readonly message?: string;
  /** For operators only: goes to logs and the recording, never to the caller. */
  readonly detail?: string;
  /** The policy rule that decided, when one did. */
  readonly rule?: string;
  /** Extra public fields for the caller's envelope (e.g. `review_id`, `review_url`). */
  readonly fields?: Readonly<Record<string, string>>;
  /** For a refusal that may succeed later (429): seconds to wait, sent as Retry-After. */
  readonly retryAfterSeconds?: number;
  readonly cause?: unknown;
}

/** An error with a stable code; protocol adapters map it to their own wire shape. */
export class GatehouseError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly type: string;
  readonly detail: string | undefined;
  readonly rule: string | undefined;
  readonly fields: Readonly<Record<string, string>> | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, options: GatehouseErrorOptions = {}) {
    const entry = errorRegistry[code];
    super(options.message ?? entry.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatehouseError';
    this.code = code;
    this.status = entry.status;
    this.type = entry.type;
    this.detail = options.detail;
    this.rule = options.rule;
    this.fields = options.fields;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export function isGatehouseError(value: unknown): value is GatehouseError {
  return value instanceof GatehouseError;
}
