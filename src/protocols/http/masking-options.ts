// Which masking applies to one exchange: the connection's default profiles plus the
// decision's `obligations.mask`, split by direction. An obligation naming a profile
// that is not configured fails the exchange (masking_profile_unknown) before anything
// is forwarded.

import type { IncomingHttpHeaders } from 'node:http';
import { GatehouseError } from '../../errors/index.js';
import type { Decision } from '../../exchange/index.js';
import { maskRequestBody, type EntityCounts, type MaskPlan, type MaskPlanner } from '../../mask/index.js';
import type { HttpConnection } from './connection.js';
import type { ResponseGuard } from './response-filters.js';

export interface DataPlaneMasking {
  readonly planner: MaskPlanner;
  readonly maxBufferBytes: number;
  /**
   * Response-side guardrail for one exchange, provided by policy from the decision's
   * `obligations.responseGuards`; undefined when the decision names none.
   */
  readonly responseGuard?: ((decision: Decision) => ResponseGuard | undefined) | undefined;
}

export interface ExchangeMasking {
  readonly request: MaskPlan | undefined;
  readonly response: MaskPlan | undefined;
  readonly requestCounts: EntityCounts;
  scrub(body: Buffer, contentType: IncomingHttpHeaders['content-type']): Buffer;
}

/** No profile applies (the usual case): shared, since nothing in it is ever written. */
const noMasking: ExchangeMasking = Object.freeze({ request: undefined, response: undefined, requestCounts: Object.freeze({}), scrub: (body: Buffer) => body });

/** `decision` undefined: the connection's own profiles (a request refused before policy decided). */
export function resolveMasking(options: DataPlaneMasking | undefined, connection: HttpConnection, decision: Decision | undefined, operation: string): ExchangeMasking {
  const fromConnection = connection.masking;
  const fromDecision = decision?.obligations?.mask;
  if ((fromConnection === undefined || fromConnection.length === 0) && (fromDecision === undefined || fromDecision.length === 0)) return noMasking;
  const names = [...(fromConnection ?? []), ...(fromDecision ?? [])];
  const requestCounts: EntityCounts = {};
  if (names.length === 0 || !options) {
    if (names.length > 0) throw new GatehouseError('masking_profile_unknown', { detail: `masking is not configured; profiles ${names.join(', ')} requested` });
    return { request: undefined, response: undefined, requestCounts, scrub: (body) => body };
  }
  for (const name of names) {
    if (!options.planner.has(name)) throw new GatehouseError('masking_profile_unknown', { detail: `no masking profile named "${name}"` });
  }
  const request = options.planner.plan(names, 'request');
  const response = options.planner.plan(names, 'response');
  return {
    request,
    // Embedding vectors hold no text: only the embeddings rule applies to them.
    response: operation === 'embeddings' && !response?.embeddings ? undefined : response,
    requestCounts,
    scrub(body, contentType) {
      if (!request) return body;
      try {
        return maskRequestBody(body, contentType, request, requestCounts);
      } catch (error) {
        throw new GatehouseError('masking_failed', { message: 'The request could not be masked, so it was not forwarded.', detail: (error as Error).message, cause: error });
      }
    },
  };
}
