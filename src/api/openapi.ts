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
