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
              obligations: { type: ['object', 'null'], description: 'What the decision obliged: mask (profile names), maxResponseBytes, responseGuards' },
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
                  request: { type: 'object', description: 'The request body, e.g. a chat completion request' },
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
          '200': { description: 'Reloaded', content: { 'application/json': { schema: { type: 'object', properties: { version: { type: 'string' }, previousVersion: { type: 'string' }, changed: { type: 'boolean' } } } } } },
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
  },
} as const;
