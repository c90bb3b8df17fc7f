// The credential scan as a stream, for an egress-only agent that holds the target's
// credential itself: the gateway never sees that credential, so it cannot look for it;
// the agent scrubs the answer (headers and body) before it enters the tunnel. Same
// forms and marker as the gateway's scan (credential-echo.ts); a compressed answer is
// decoded first (decode-answer.ts), any other coding refused.

import { pipeline, Transform, type Readable } from 'node:stream';
import type { ForwardResponse } from '../../forward/index.js';
import { CredentialEchoScrubber, scrubHeaders, type CredentialEchoForms } from './credential-echo.js';
import { answerDecoder } from './decode-answer.js';

type Headers = Readonly<Record<string, string | string[] | undefined>>;

/**
 * The answer's headers and body with every occurrence of the credential replaced, or an
 * error when its coding cannot be decoded. `hasBody` false (a HEAD answer, 204, 304):
 * nothing to decode, the headers are kept as they are but for the scrub.
 */
export function scrubbedAnswer(upstream: ForwardResponse, echo: CredentialEchoForms, counts: Record<string, number>, hasBody: boolean): { headers: Headers; body: Readable } | { error: string } {
  const raw = upstream.headers['content-encoding'];
  const encoding = Array.isArray(raw) ? raw.join(', ') : raw;
  const decoder = hasBody ? answerDecoder(encoding) : undefined;
  if (decoder === false) return { error: `cannot scan a ${encoding}-encoded answer for the target credential` };
  let headers: Headers = scrubHeaders(upstream.headers, echo, counts);
  if (decoder) {
    const copy = { ...headers };
    delete copy['content-encoding'];
    delete copy['content-length'];
    headers = copy;
  }
  const scrubber = new CredentialEchoScrubber(echo, counts);
  const scrub = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      callback(null, scrubber.push(chunk));
    },
    flush(callback) {
      callback(null, scrubber.end());
    },
  });
  const ignore = () => undefined;
  const body = decoder ? pipeline(upstream.body, decoder(), scrub, ignore) : pipeline(upstream.body, scrub, ignore);
  return { headers, body };
}
