// Admin API routes for approvals, enough for a console to be built on them alone:
//   GET  /api/reviews?state=&connection=&subject=&limit=&cursor=   list, newest first
//   GET  /api/reviews/events                                        server-sent events
//   GET  /api/reviews/:id                                           one review, with votes
//   POST /api/reviews/:id/approve  {comment?, grantFor?}            vote to approve
//   POST /api/reviews/:id/deny     {reason?}                        vote to deny
//   POST /api/reviews/:id/cancel                                    requester or admin withdraws
// Any valid API key authenticates (a token scoped to connections only for its own
// review); reading needs a reviewer group (or an admin
// group), except the requester reading its own review; voting is checked per review by ApprovalService (reviewer groups, no
// self-approval, one vote each).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { maxReviewPageSize, reviewStates, type ApprovalService, type ReviewState } from '../approvals/index.js';
import { parseDuration } from '../config/index.js';
import { GatehouseError } from '../errors/index.js';
import type { Identity } from '../exchange/index.js';
import { isConnectionScoped, refuseConnectionScoped } from '../identity/index.js';
import { bearerToken } from '../protocols/http/index.js';
import { decodePathParam, intParam, onlyParams, pageLimitParam, sendJson } from './http-helpers.js';

export interface ReviewsRoutesOptions {
  readonly service: ApprovalService;
  readonly identify: (credential: string | undefined, client?: string) => Promise<Identity>;
}

const maxBody = 16 * 1024;
const maxBufferedEvents = 1024 * 1024;

/** Returns false when the path is not a reviews route; throws GatehouseErrors for the admin server to write. */
export function createReviewsRoutes({ service, identify }: ReviewsRoutesOptions) {
  return async function handleReviews(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const path = url.pathname;
    if (path !== '/api/reviews' && !path.startsWith('/api/reviews/')) return false;
    const rest = path.slice('/api/reviews'.length).split('/').filter(Boolean).map(decodePathParam);
    const method = req.method ?? 'GET';
    const expect = (m: string) => {
      if (method !== m) throw new GatehouseError('method_not_allowed', { message: `Use ${m} for ${path}.` });
    };
    const identity = await identify(bearerToken(req.headers.authorization), req.socket.remoteAddress);
    // A just-in-time token (scoped to connections) may follow its own review, never
    // read others' nor vote: handed to a job or an agent, it must not act as a reviewer.
    const scoped = () => refuseConnectionScoped(identity, 'to read or decide reviews other than its own');
    const mustRead = () => {
      scoped();
      if (!service.mayRead(identity)) throw new GatehouseError('access_denied', { message: `${identity.subject} is not in a reviewer or admin group.`, rule: 'reviewer-groups' });
    };

    if (rest.length === 0) {
      expect('GET');
      mustRead();
      const q = url.searchParams;
      onlyParams(q, ['state', 'connection', 'subject', 'limit', 'cursor']);
      const state = q.get('state');
      if (state !== null && !reviewStates.includes(state as ReviewState)) throw new GatehouseError('invalid_query', { message: `Query parameter "state" must be one of ${reviewStates.join(', ')}.` });
      const page = await service.list({
        state: (state ?? undefined) as ReviewState | undefined,
        connection: q.get('connection') ?? undefined,
        subject: q.get('subject') ?? undefined,
        limit: pageLimitParam(q, maxReviewPageSize),
        before: q.has('cursor') ? intParam(q, 'cursor') : undefined,
      });
      sendJson(res, 200, { reviews: page.items, next: page.next === undefined ? null : String(page.next) });
      return true;
    }
    if (rest.length === 1 && rest[0] === 'events') {
      expect('GET');
      mustRead();
      streamEvents(req, res);
      return true;
    }
    const id = rest[0]!;
    if (rest.length === 1) {
      expect('GET');
      // The requester may read its own review: the review_url of its 403 points here,
      // and a denial's reason is here. Anyone else needs a reviewer or admin group (and
      // learns nothing of whether the id exists).
      const reader = !isConnectionScoped(identity) && service.mayRead(identity);
      const review = await service.get(id);
      if (!reader && review?.subject !== identity.subject) mustRead();
      if (!review) throw new GatehouseError('review_not_found', { message: `No review with id "${id}".` });
      sendJson(res, 200, review);
      return true;
    }
    if (rest.length === 2 && (rest[1] === 'approve' || rest[1] === 'deny' || rest[1] === 'cancel')) {
      expect('POST');
      const body = await readJson(req);
      if (rest[1] === 'cancel') {
        if ((await service.get(id))?.subject !== identity.subject) scoped();
        sendJson(res, 200, await service.cancel(id, identity));
        return true;
      }
      // A misspelt field would be dropped silently: `{"grant": "30m"}` would approve one
      // request where the reviewer meant a grant.
      scoped();
      const fields = rest[1] === 'approve' ? ['comment', 'grantFor'] : ['reason', 'comment'];
      const unknown = Object.keys(body).find((k) => !fields.includes(k));
      if (unknown !== undefined) throw new GatehouseError('invalid_vote', { message: `Unknown field "${unknown.slice(0, 100)}": ${rest[1] === 'approve' ? 'an approval' : 'a denial'} takes ${fields.map((f) => `"${f}"`).join(' and ')}.` });
      const comment = body['comment'] ?? body['reason'];
      if (comment !== undefined && typeof comment !== 'string') throw new GatehouseError('invalid_vote', { message: '"comment" (or "reason") must be a string.' });
      let grantMs: number | undefined;
      if (body['grantFor'] !== undefined) {
        const value = body['grantFor'];
        grantMs = typeof value === 'string' || typeof value === 'number' ? parseDuration(value) : undefined;
        if (grantMs === undefined) throw new GatehouseError('invalid_vote', { message: '"grantFor" must be a duration such as "30m" or a number of milliseconds.' });
      }
      sendJson(res, 200, await service.vote(id, identity, rest[1], { comment, grantMs, via: 'api' }));
      return true;
    }
    throw new GatehouseError('route_not_found');
  };

  function streamEvents(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    const unsubscribe = service.bus.subscribe((type, id) => {
      void service.get(id).then((review) => {
        if (!review || res.destroyed) return;
        // A console that cannot keep up is cut off rather than buffered without bound.
        if (res.writableLength > maxBufferedEvents) {
          res.destroy();
          return;
        }
        res.write(`event: ${type}\nid: ${id}\ndata: ${JSON.stringify(review)}\n\n`);
      }, () => undefined);
    });
    // The LISTEN connection was lost and is back: events of other processes may have been
    // missed meanwhile, so the client is told to re-read the list.
    const unsubscribeResync = service.bus.onResync(() => {
      if (!res.destroyed) res.write('event: review.resync\ndata: {"reason":"events of other gateways may have been missed while the store was unreachable; re-read GET /api/reviews"}\n\n');
    });
    const stop = () => {
      clearInterval(heartbeat);
      unsubscribe();
      unsubscribeResync();
    };
    req.once('close', stop);
    res.once('close', stop);
  }
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBody) throw new GatehouseError('request_too_large', { message: `The request body exceeds ${maxBody} bytes.` });
    chunks.push(chunk);
  }
  if (size === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new GatehouseError('invalid_vote', { message: 'The body must be a JSON object.' });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new GatehouseError('invalid_vote', { message: 'The body must be a JSON object.' });
  return value as Record<string, unknown>;
}
