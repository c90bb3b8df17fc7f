// Clients for failed-authentication throttling tests: a fetch-like request from a given
// loopback address (127.0.0.2 …; node:http binds it as the local address), so that a test
// can be a client other than 127.0.0.1, since the throttle counts per client address; and
// a wait that keeps a test's attempts in one fixed counting window.

import { request } from 'node:http';

export interface AnswerFrom {
  readonly status: number;
  readonly headers: { get(name: string): string | null; getSetCookie(): string[] };
  text(): Promise<string>;
  json(): Promise<unknown>;
  arrayBuffer(): Promise<unknown>;
}

export function fetchFrom(localAddress: string) {
  return (url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) =>
    new Promise<AnswerFrom>((resolve, reject) => {
      const req = request(url, { method: init.method ?? 'GET', headers: init.headers, localAddress, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const header = (name: string) => res.headers[name.toLowerCase()];
          resolve({
            status: res.statusCode ?? 0,
            headers: { get: (name) => (header(name) as string | undefined) ?? null, getSetCookie: () => res.headers['set-cookie'] ?? [] },
            text: async () => text,
            json: async () => JSON.parse(text) as unknown,
            arrayBuffer: async () => undefined,
          });
        });
      });
      req.on('error', reject);
      req.end(init.body);
    });
}

/** Fixed windows: stay clear of a boundary so that every attempt of a test counts in one window. */
export async function clearOfWindowEnd(windowMs: number, marginMs: number): Promise<void> {
  const into = Date.now() % windowMs;
  if (into > windowMs - marginMs) await new Promise((resolve) => setTimeout(resolve, windowMs - into + 200));
}
