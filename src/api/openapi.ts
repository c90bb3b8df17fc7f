// The admin API's OpenAPI 3.1 document, served at GET /api/openapi.json. A test keeps
// it in step with the routes the admin server actually answers.

const errorResponse = { description: 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };

export const openApiDocument = {
  openapi: '3.1.0',
  info: { title: 'Gatehouse admin API', version: '1', description: 'Administration of a Gatehouse gateway. Authenticate with an API key whose groups include one of `admin.groups`.' },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
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
              errorDetail: { type: ['string', 'null'] },
              request: { type: 'object' },
              response: { type: 'object' },
              bytesIn: { type: 'integer' },
              bytesOut: { type: 'integer' },
              ttfbMs: { type: ['integer', 'null'] },
            },
          },
        ],
      },
    },
  },
  security: [{ bearer: [] }],
  paths: {
    '/healthz': { get: { summary: 'Liveness', security: [], responses: { '200': { description: 'The process is up' } } } },
    '/readyz': { get: { summary: 'Readiness: the store answers', security: [], responses: { '200': { description: 'Ready' }, '503': errorResponse } } },
    '/metrics': { get: { summary: 'Prometheus metrics', security: [], responses: { '200': { description: 'Prometheus text format' } } } },
    '/api/openapi.json': { get: { summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1' } } } },
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
          { name: 'text', in: 'query', description: 'Full text over prompts and answers (words; "quoted phrase" on PostgreSQL)', schema: { type: 'string' } },
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
                schema: { type: 'object', properties: { sessions: { type: 'array', items: { $ref: '#/components/schemas/SessionSummary' } }, next: { type: ['string', 'null'] } } },
              },
            },
          },
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
        summary: 'Reveals the sealed raw content (audit.raw) to a member of audit.raw.revealGroups; the reveal is an audit event',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': { description: '{ id, request, response }' }, '401': errorResponse, '403': errorResponse, '404': errorResponse, '409': errorResponse },
      },
    },
    '/api/audit/verify': {
      get: {
        summary: 'Verifies the tamper-evident chain (as `gatehouse audit verify`)',
        parameters: [{ name: 'from', in: 'query', description: 'Seq of the checkpoint to start from', schema: { type: 'integer' } }],
        responses: { '200': { description: '{ ok, fromSeq, toSeq, events, checkpoints, exchanges, problems: [{ seq, eventId, exchangeId, message }] }' }, '401': errorResponse, '403': errorResponse },
      },
    },
  },
} as const;
