// The admin API's OpenAPI document lists exactly the routes the admin server answers:
// every route behind the admin check is documented with its method, and every
// documented /api path is answered. The routes are those the gateway wires
// (src/server/gateway.ts): the built-in ones, audit, policy and identity routes.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { createAdminHandler, identityAdminRoutes, openApiDocument } from '../../src/api/index.js';
import { createPolicyRoutes } from '../../src/api/policy-routes.js';
import { createMetrics } from '../../src/observability/index.js';

// Building the route tables reads none of these: only the handlers would.
const unused = {} as never;

function adminRoutes(): ReadonlyArray<readonly [string, RegExp]> {
  const handler = createAdminHandler({
    db: unused,
    identify: async () => unused,
    adminGroups: ['admins'],
    metrics: createMetrics(),
    logger: pino({ level: 'silent' }),
    routes: [...createPolicyRoutes({ runtime: unused, connections: [] }), ...identityAdminRoutes(unused, unused, unused)],
    audit: { db: unused } as never,
  });
  return handler.routes;
}

/** A documented path as a concrete one: `{id}` becomes a sample id. */
const concrete = (path: string) => path.replace(/\{[^}]+\}/g, 'ex_sample01');

const documented = Object.entries(openApiDocument.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) => Object.keys(methods).map((method) => [method.toUpperCase(), path] as const));

describe('admin API: the OpenAPI document matches the routes', () => {
  test('every route behind the admin check is documented, with its method', () => {
    const routes = adminRoutes();
    assert.ok(routes.length >= 10, 'the route table is read');
    for (const [method, pattern] of routes) {
      const match = documented.find(([m, path]) => m === method && pattern.test(concrete(path)));
      assert.ok(match, `${method} ${pattern} is answered by the admin server but not in the OpenAPI document`);
    }
  });

  test('every documented /api path is answered (reviews and the document itself are served separately)', () => {
    const routes = adminRoutes();
    for (const [method, path] of documented) {
      if (!path.startsWith('/api/') || path.startsWith('/api/reviews') || path === '/api/openapi.json') continue;
      assert.ok(routes.some(([m, pattern]) => m === method && pattern.test(concrete(path))), `${method} ${path} is documented but no route answers it`);
    }
  });

  test('the identity routes are documented: whoami, revocations, lift', () => {
    const paths = openApiDocument.paths as Record<string, Record<string, unknown>>;
    assert.ok(paths['/api/whoami']?.['get']);
    assert.ok(paths['/api/revocations']?.['get']);
    assert.ok(paths['/api/revocations']?.['post']);
    assert.ok(paths['/api/revocations/{id}/lift']?.['post']);
  });

  test('every route that authenticates documents 429 auth_throttled with Retry-After; the public ones do not', () => {
    const paths = openApiDocument.paths as Record<string, Record<string, { responses: Record<string, { headers?: Record<string, unknown> }> }>>;
    const open = ['/healthz', '/readyz', '/metrics', '/api/openapi.json'];
    for (const [path, methods] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const throttled = op.responses['429'];
        if (open.includes(path)) assert.equal(throttled, undefined, `${method} ${path} authenticates no one`);
        else assert.ok(throttled?.headers?.['Retry-After'], `${method} ${path} can be refused with 429 auth_throttled`);
      }
    }
    assert.ok(paths['/api/sessions']?.['get']?.responses['429']);
  });
});

