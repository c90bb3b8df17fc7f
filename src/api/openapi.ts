// The admin API's OpenAPI 3.1 document, served at GET /api/openapi.json. A test keeps
// it in step with the routes the admin server actually answers.

const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const reviewJson = { content: { 'application/json': { schema: { $ref: '#/components/schemas/Review' } } } };

// Approvals (src/api/reviews-routes.ts). Any valid API key authenticates; reading needs a
// reviewer or admin group, voting a reviewer group of that review (see docs/approvals.md).
const reviewPaths = {
  '/api/reviews': {
    get: {
      summary: 'List approval reviews, newest first',
      parameters: [
        { name: 'state', in: 'query', schema: { type: 'string', enum: ['pending', 'approved', 'denied', 'expired', 'cancelled', 'executed'] } },
        { name: 'connection', in: 'query', schema: { type: 'string' } },
        { name: 'subject', in: 'query', schema: { type: 'string' } },
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
        { name: 'cursor', in: 'query', description: 'The `next` value of the previous page', schema: { type: 'string' } },
      ],
      responses: {
        '200': { description: 'A page of reviews', content: { 'application/json': { schema: { type: 'object', properties: { reviews: { type: 'array', items: { $ref: '#/components/schemas/Review' } }, next: { type: ['string', 'null'] } } } } } },
        '400': { $ref: '#/components/responses/Error' },
        '401': { $ref: '#/components/responses/Error' },
        '403': { $ref: '#/components/responses/Error' },
      },
    },
  },
  '/api/reviews/events': {
    get: {
      summary: 'Server-sent events: `event: review.created|review.voted|review.approved|review.denied|review.expired|review.cancelled|review.executed|review.restored`, `id: <review id>`, `data: <Review JSON>`',
      responses: { '200': { description: 'text/event-stream' }, '401': { $ref: '#/components/responses/Error' }, '403': { $ref: '#/components/responses/Error' } },
    },
  },
  '/api/reviews/{id}': {
    get: {
      summary: 'One review, with its votes',
      parameters: [idParam],
      responses: { '200': { description: 'The review', ...reviewJson }, '401': { $ref: '#/components/responses/Error' }, '403': { $ref: '#/components/responses/Error' }, '404': { $ref: '#/components/responses/Error' } },
    },
  },
  '/api/reviews/{id}/approve': {
    post: {
      summary: 'Vote to approve (as the caller); `grantFor` approves a time-boxed grant instead of one request',
      parameters: [idParam],
      requestBody: { content: { 'application/json': { schema: { type: 'object', additionalProperties: false, properties: { comment: { type: 'string', maxLength: 2000 }, grantFor: { type: ['string', 'integer'], examples: ['30m', 1800000] } } } } } },
      responses: { '200': { description: 'The review after the vote', ...reviewJson }, '400': { $ref: '#/components/responses/Error' }, '403': { $ref: '#/components/responses/Error' }, '404': { $ref: '#/components/responses/Error' }, '409': { $ref: '#/components/responses/Error' } },
    },
  },
  '/api/reviews/{id}/deny': {
    post: {
      summary: 'Vote to deny (one deny denies)',
      parameters: [idParam],
      requestBody: { content: { 'application/json': { schema: { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', maxLength: 2000 }, comment: { type: 'string', maxLength: 2000 } } } } } },
      responses: { '200': { description: 'The review after the vote', ...reviewJson }, '400': { $ref: '#/components/responses/Error' }, '403': { $ref: '#/components/responses/Error' }, '404': { $ref: '#/components/responses/Error' }, '409': { $ref: '#/components/responses/Error' } },
    },
  },
  '/api/reviews/{id}/cancel': {
    post: {
      summary: 'Withdraw a pending review (the requester, or an admin)',
      parameters: [idParam],
      responses: { '200': { description: 'The cancelled review', ...reviewJson }, '403': { $ref: '#/components/responses/Error' }, '404': { $ref: '#/components/responses/Error' }, '409': { $ref: '#/components/responses/Error' } },
    },
  },
};

const errorResponse = { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };

const documented = {
  openapi: '3.1.0',
  info: { title: 'Gatehouse admin API', version: '1', description: 'Administration of a Gatehouse gateway. Authenticate with an API key whose groups include one of `admin.groups`.' },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    responses: { Error: { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } } },
    schemas: {
      Revocation: {
        type: 'object',
        properties: { id: { type: 'string' }, kind: { type: 'string', enum: ['token', 'subject', 'user', 'key', 'signing-key'] }, value: { type: 'string' }, createdAt: { type: 'integer', description: 'epoch milliseconds' }, reason: { type: ['string', 'null'] }, revokedBy: { type: ['string', 'null'] } },
      },
      Review: {
        type: 'object',
        description: 'See docs/approvals.md. Times are ISO 8601.',
        properties: {
          id: { type: 'string' },
          state: { type: 'string', enum: ['pending', 'approved', 'denied', 'expired', 'cancelled', 'executed'] },
          subject: { type: 'string' },
          apiKey: { type: ['string', 'null'], description: 'id of the API key that asked (directly or through a Gatehouse token exchanged for it): the approval is for that key only; null for an identity with none' },
          identityKind: { type: ['string', 'null'] },
          connection: { type: 'string' },
          operation: { type: 'string' },
          digest: { type: 'string', description: 'sha256:<hex> of the canonical request body' },
          policyVersion: { type: 'string' },
          rules: { type: 'array', items: { type: 'string' } },
          reviewerGroups: { type: 'array', items: { type: 'string' } },
          minApprovals: { type: 'integer' },
          approvals: { type: 'integer' },
          justification: { type: ['string', 'null'] },
          exchangeId: { type: ['string', 'null'] },
          model: { type: ['string', 'null'] },
          promptPreview: { type: ['string', 'null'] },
          createdAt: { type: 'string' },
          expiresAt: { type: 'string' },
          decidedAt: { type: ['string', 'null'] },
          decidedBy: { type: ['string', 'null'] },
          usableUntil: { type: ['string', 'null'] },
          grant: { type: ['object', 'null'], properties: { durationMs: { type: 'integer' }, expiresAt: { type: ['string', 'null'] } } },
          executedAt: { type: ['string', 'null'] },
          executedByExchange: { type: ['string', 'null'] },
          votes: {
            type: 'array',
            items: { type: 'object', properties: { voter: { type: 'string' }, vote: { type: 'string', enum: ['approve', 'deny'] }, comment: { type: ['string', 'null'] }, grantMs: { type: ['integer', 'null'] }, via: { type: 'string', enum: ['api', 'cli'] }, createdAt: { type: 'string' } } },
          },
        },
      },
      Error: {
        type: 'object',
        required: ['error'],
        properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
      },
      SessionSummary: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          sessionId: { type: 'string' },
          startedAt: { type: 'string', format: 'date-time' },
          connection: { type: 'string' },
          operation: { type: 'string', examples: ['chat.completions', 'embeddings', 'http.GET /models'] },
          subject: { type: ['string', 'null'] },
          identityKind: { type: ['string', 'null'], enum: ['human', 'service', 'agent', null] },
          decision: { type: 'string', enum: ['allow', 'deny', 'require_approval'] },
          rules: { type: 'array', items: { type: 'string' } },
          status: { type: ['integer', 'null'] },
          errorCode: { type: ['string', 'null'] },
          model: { type: ['string', 'null'] },
          stream: { type: 'boolean' },
          complete: { type: 'boolean' },
          durationMs: { type: ['integer', 'null'] },
          reviewId: { type: ['string', 'null'], description: 'The approval review that governed the exchange (filter `review`)' },
          reexecutionOf: { type: ['string', 'null'], description: 'The exchange this one re-executed (POST /api/sessions/{id}/reexecute)' },
        },
      },
      SessionDetail: {
        allOf: [
          { $ref: '#/components/schemas/SessionSummary' },
          {
            type: 'object',
            properties: {
              endedAt: { type: ['string', 'null'], format: 'date-time' },
              authMethod: { type: ['string', 'null'] },
              credentialId: { type: ['string', 'null'] },
              groups: { type: 'array', items: { type: 'string' } },
              clientAddress: { type: ['string', 'null'] },
              reason: { type: ['string', 'null'] },
              policyVersion: { type: ['string', 'null'] },
              obligations: { type: ['object', 'null'], description: 'What the decision obliged: mask (profile names), maxResponseBytes, responseGuards' },
              errorDetail: { type: ['string', 'null'] },
              request: { type: 'object' },
              response: { type: 'object' },
              bytesIn: { type: 'integer' },
              bytesOut: { type: 'integer' },
              ttfbMs: { type: ['integer', 'null'] },
              approval: { type: ['object', 'null'], description: 'The review that let it pass (or refused it)', properties: { reviewId: { type: 'string' }, via: { type: ['string', 'null'], enum: ['held', 'retry', 'grant', null] } } },
              maskCounts: { type: ['object', 'null'], additionalProperties: { type: 'integer' }, description: 'Values masked, by entity type (answer and scrubbed request)' },
              chunkTimings: { type: ['array', 'null'], items: { type: 'array', items: { type: 'integer' }, minItems: 2, maxItems: 2 }, description: '[msSinceStart, bytes] of each relayed piece of the answer (at most 512)' },
              rawRecorded: { type: 'boolean', description: 'Raw (unmasked) content was sealed for this exchange (audit.raw)' },
            },
          },
        ],
      },
    },
  },
  security: [{ bearer: [] }],
  paths: {
    ...reviewPaths,
    '/healthz': { get: { summary: 'Liveness', security: [], responses: { '200': { description: 'The process is up' } } } },
    '/readyz': { get: { summary: 'Readiness: the store answers, and Redis when limits are kept there; 503 gateway_stopping once the gateway is stopping', security: [], responses: { '200': { description: 'Ready' }, '503': errorResponse } } },
    '/metrics': { get: { summary: 'Prometheus metrics', security: [], responses: { '200': { description: 'Prometheus text format' } } } },
    '/api/openapi.json': { get: { summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1' } } } },
    '/api/agents': {
      get: {
        summary: 'Agents connected to this gateway, and how many serve each connection routed through an agent',
        responses: {
          '200': {
            description: 'Agent status (live state of this gateway process)',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  properties: {
                    enabled: { type: 'boolean' },
                    queued: { type: 'integer' },
                    agents: {
                      type: 'array',
                      items: {
                        type: 'object',
                        properties: {
                          session: { type: 'string' },
                          name: { type: 'string' },
                          subject: { type: 'string' },
                          keyId: { type: 'string' },
                          connections: { type: 'array', items: { type: 'string' } },
                          concurrency: { type: 'integer' },
                          inFlight: { type: 'integer' },
                          remoteAddress: { type: ['string', 'null'] },
                          version: { type: 'string' },
                          connectedAt: { type: 'string', format: 'date-time' },
                          lastHeartbeatAt: { type: 'string', format: 'date-time' },
                        },
                      },
                    },
                    routes: {
                      type: 'array',
                      items: { type: 'object', properties: { connection: { type: 'string' }, agent: { type: 'string' }, connectedAgents: { type: 'integer' } } },
                    },
                  },
                },
              },
            },
          },
          '401': errorResponse,
          '403': errorResponse,
        },
      },
    },
    '/api/sessions': {
      get: {
        summary: 'List recorded sessions (exchanges), newest first',
        parameters: [
          { name: 'connection', in: 'query', schema: { type: 'string' } },
          { name: 'subject', in: 'query', schema: { type: 'string' } },
          { name: 'decision', in: 'query', schema: { type: 'string', enum: ['allow', 'deny', 'require_approval'] } },
          { name: 'operation', in: 'query', schema: { type: 'string' } },
          { name: 'group', in: 'query', description: 'A group the caller was in', schema: { type: 'string' } },
          { name: 'rule', in: 'query', description: 'A rule that produced the decision', schema: { type: 'string' } },
          { name: 'review', in: 'query', description: 'Review (approval) id', schema: { type: 'string' } },
          { name: 'text', in: 'query', description: 'Full text over prompts and answers: every word (a run of letters and digits) must appear, in any order, case-insensitive; no query syntax, the same on SQLite and PostgreSQL', schema: { type: 'string' } },
          { name: 'since', in: 'query', description: 'ISO 8601 time, inclusive', schema: { type: 'string', format: 'date-time' } },
          { name: 'until', in: 'query', description: 'ISO 8601 time, inclusive', schema: { type: 'string', format: 'date-time' } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
          { name: 'cursor', in: 'query', description: 'The `next` value of the previous page', schema: { type: 'string' } },
        ],
        responses: {
          '200': {
            description: 'A page of sessions',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  properties: {
                    sessions: { type: 'array', items: { $ref: '#/components/schemas/SessionSummary' } },
                    next: { type: ['string', 'null'] },
                    unmatched: {
                      description: 'Only on an empty first page: each filter whose value no exchange has (an operation also not of an operation\'s shape), with the recorded or configured names (connections in the config, rules of the running policy) nearest to it, closest first; a configured connection or policy rule that no exchange has yet comes with configured: true and no names',
                      type: 'array',
                      items: { type: 'object', properties: { filter: { type: 'string', enum: ['operation', 'connection', 'subject', 'group', 'rule'] }, value: { type: 'string' }, nearest: { type: 'array', items: { type: 'string' } }, configured: { type: 'boolean', enum: [true] } } },
                    },
                  },
                },
              },
            },
          },
          '400': errorResponse,
          '401': errorResponse,
          '403': errorResponse,
        },
      },
    },
    '/api/policy': {
      get: {
        summary: 'The running policy: version (a hash of the compiled rules) and rule count',
        responses: {
          '200': { description: 'The running policy', content: { 'application/json': { schema: { type: 'object', properties: { version: { type: 'string' }, ruleCount: { type: 'integer' } } } } } },
          '401': errorResponse,
          '403': errorResponse,
        },
      },
    },
    '/api/policy/check': {
      post: {
        summary: 'Dry run: the decision for a would-be request, and why each rule matched or not (nothing is forwarded, counted or recorded)',
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['subject', 'connection'],
                properties: {
                  subject: { type: 'string', examples: ['key:ci-bot'] },
                  groups: { type: 'array', items: { type: 'string' } },
                  kind: { type: 'string', enum: ['human', 'service', 'agent'], default: 'service' },
                  connection: { type: 'string' },
                  operation: { type: 'string', description: 'Overrides the operation derived from method and path' },
                  method: { type: 'string' },
                  path: { type: 'string', description: 'Path after /c/<connection>, default /chat/completions' },
                  at: { type: 'string', format: 'date-time', description: 'When the request happens (time windows); default now' },
                  request: { type: ['object', 'string'], description: 'The request body, e.g. a chat completion request; with contentType, the body as text' },
                  contentType: { type: 'string', description: 'The body\'s Content-Type when it is not JSON, e.g. multipart/form-data; boundary=…' },
                },
              },
            },
          },
        },
        responses: {
          '200': {
            description: 'The decision and every rule with its criteria',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  properties: {
                    decision: { type: 'object', properties: { effect: { type: 'string', enum: ['allow', 'deny', 'require_approval'] }, rules: { type: 'array', items: { type: 'string' } }, reason: { type: 'string' }, message: { type: 'string' }, policyVersion: { type: 'string' }, obligations: { type: 'object' } } },
                    rules: {
                      type: 'array',
                      items: {
                        type: 'object',
                        properties: {
                          rule: { type: 'string' },
                          effect: { type: 'string' },
                          on: { type: 'string', enum: ['request', 'response'] },
                          matched: { type: 'boolean' },
                          checks: { type: 'array', items: { type: 'object', properties: { criterion: { type: 'string' }, ok: { type: 'boolean' } } } },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
          '400': errorResponse,
          '401': errorResponse,
          '403': errorResponse,
        },
      },
    },
    '/api/policy/reload': {
      post: {
        summary: 'Recompile the policy from the config and policy files; an invalid policy is refused (400 invalid_policy) and the running one stays',
        responses: {
          '200': { description: 'Reloaded', content: { 'application/json': { schema: { type: 'object', properties: { version: { type: 'string' }, previousVersion: { type: 'string' }, changed: { type: 'boolean' }, restartNeeded: { type: 'array', items: { type: 'string' }, description: 'config paths that changed but apply only after a restart' } } } } } },
          '400': errorResponse,
          '401': errorResponse,
          '403': errorResponse,
        },
      },
    },
    '/api/sessions/{id}': {
      get: {
        summary: 'One recorded session in full',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': { description: 'The session', content: { 'application/json': { schema: { $ref: '#/components/schemas/SessionDetail' } } } },
          '401': errorResponse,
          '403': errorResponse,
          '404': errorResponse,
        },
      },
    },
    '/api/sessions/{id}/replay': {
      get: {
        summary: 'The session as it happened: the record and its answer as a timeline of chunks with their timings',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': { description: '{ session, timeline: [{ atMs, bytes, text }] }' }, '401': errorResponse, '403': errorResponse, '404': errorResponse },
      },
    },
    '/api/sessions/{id}/reexecute': {
      post: {
        summary: "Re-executes the recorded request under the caller's own key, through the whole pipeline; the new record links to the original",
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': { description: '{ id, reexecutionOf, status, body, truncated }' }, '401': errorResponse, '403': errorResponse, '404': errorResponse, '409': errorResponse },
      },
    },
    '/api/sessions/{id}/reveal': {
      post: {
        summary: 'Reveals the sealed raw content (audit.raw) to a member of audit.raw.revealGroups; the reveal is an audit event (exchange.revealed), and so is a refused one (exchange.reveal_refused)',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': { description: '{ id, request, response }' }, '401': errorResponse, '403': errorResponse, '404': errorResponse, '409': errorResponse },
      },
    },
    '/api/alerts': {
      get: {
        summary: 'Alerts raised (alert.raised events: failed-auth-then-success, bulk-requests), newest first (as `gatehouse audit alerts`)',
        parameters: [
          { name: 'since', in: 'query', description: 'ISO 8601: raised at or after', schema: { type: 'string' } },
          { name: 'until', in: 'query', description: 'ISO 8601: raised before', schema: { type: 'string' } },
          { name: 'limit', in: 'query', description: '1 to 500, default 100', schema: { type: 'integer' } },
        ],
        responses: { '200': { description: '{ alerts: [{ seq, id, at, actor, target, details: { alert, … } }] }' }, '400': errorResponse, '401': errorResponse, '403': errorResponse },
      },
    },
    '/api/audit/verify': {
      get: {
        summary: 'Verifies the tamper-evident chain (as `gatehouse audit verify`)',
        parameters: [{ name: 'from', in: 'query', description: 'Seq of the checkpoint to start from', schema: { type: 'integer' } }],
        responses: { '200': { description: '{ ok, fromSeq, toSeq, events, checkpoints, exchanges, problems: [{ seq, eventId, exchangeId, message }] }' }, '400': errorResponse, '401': errorResponse, '403': errorResponse },
      },
    },
    // Identity (src/api/identity-routes.ts; docs/identity.md).
    '/api/whoami': {
      get: {
        summary: 'Who the admin API sees: the caller\'s subject, kind, groups and how it authenticated (`gatehouse whoami`)',
        responses: {
          '200': { description: 'The caller', content: { 'application/json': { schema: { type: 'object', properties: { subject: { type: 'string' }, kind: { type: 'string', enum: ['human', 'service', 'agent'] }, groups: { type: 'array', items: { type: 'string' } }, method: { type: 'string' } } } } } },
          '401': errorResponse,
          '403': errorResponse,
        },
      },
    },
    '/api/revocations': {
      get: {
        summary: 'Every revocation, newest first (`gatehouse revoke list`)',
        responses: {
          '200': { description: 'Revocations', content: { 'application/json': { schema: { type: 'object', properties: { revocations: { type: 'array', items: { $ref: '#/components/schemas/Revocation' } } } } } } },
          '401': errorResponse,
          '403': errorResponse,
        },
      },
      post: {
        summary: 'Revoke a token (jti), subject, user or API key (id or name: every live key of the name) on every gateway sharing the store within 1 s, cutting in-flight exchanges',
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { type: 'object', required: ['kind', 'value'], properties: { kind: { type: 'string', enum: ['token', 'subject', 'user', 'key', 'signing-key'] }, value: { type: 'string', maxLength: 512 }, reason: { type: 'string' } } } } },
        },
        responses: {
          '200': { description: 'The revocation (for a key name, `revocations` lists one per key)', content: { 'application/json': { schema: { type: 'object', properties: { revocation: { $ref: '#/components/schemas/Revocation' }, revocations: { type: 'array', items: { $ref: '#/components/schemas/Revocation' } } } } } } },
          '400': errorResponse,
          '401': errorResponse,
          '403': errorResponse,
          '404': errorResponse,
          '413': errorResponse,
        },
      },
    },
    '/api/revocations/{id}/lift': {
      post: {
        summary: 'Lift one revocation (`gatehouse revoke lift ID`)',
        parameters: [idParam],
        responses: {
          '200': { description: 'Lifted', content: { 'application/json': { schema: { type: 'object', properties: { lifted: { type: 'string' } } } } } },
          '401': errorResponse,
          '403': errorResponse,
          '404': errorResponse,
        },
      },
    },
  },
} as const;

const throttledResponse = {
  description: 'auth_throttled: too many failed authentications from this address, or from it for this API key id; retry after `Retry-After` seconds (identity.authThrottle)',
  headers: { 'Retry-After': { schema: { type: 'integer' } } },
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
};

/** Every route that authenticates its caller (it answers 401 or 403) may answer 429 once the caller's address is throttled. */
function withThrottledAnswers<T extends { readonly paths: object }>(document: T): T {
  const paths = Object.fromEntries(
    Object.entries(document.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>).map(([path, methods]) => [
      path,
      Object.fromEntries(Object.entries(methods).map(([method, op]) => [method, '401' in op.responses || '403' in op.responses ? { ...op, responses: { ...op.responses, '429': throttledResponse } } : op])),
    ]),
  );
  return { ...document, paths };
}

export const openApiDocument = withThrottledAnswers(documented);
