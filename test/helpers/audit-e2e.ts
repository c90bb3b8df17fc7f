// Shared by the audit end-to-end tests: the upstream's key, a streamed chat request
// read until the caller has seen enough, the streamed text, and the CLI against a
// test's config.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCli } from './gateway-process.js';

export const upstreamKey = 'sk-upstream-audit';
export const env = { ...process.env, UPSTREAM_KEY: upstreamKey };
export const longPrompt = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');

export async function streamUntil(url: string, key: string, enough: (received: string) => boolean): Promise<{ id: string; received: string; reader: ReadableStreamDefaultReader<Uint8Array> }> {
  const res = await fetch(`${url}/c/demo/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: longPrompt }] }),
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let received = '';
  while (!enough(received)) {
    const { value, done } = await reader.read();
    if (done) break;
    received += decoder.decode(value, { stream: true });
  }
  return { id: res.headers.get('gatehouse-exchange-id')!, received, reader };
}

export function contentOf(sse: string): string {
  let text = '';
  for (const line of sse.split('\n')) {
    if (!line.startsWith('data: {')) continue;
    const content = (JSON.parse(line.slice(6)) as { choices: { delta?: { content?: string } }[] }).choices[0]?.delta?.content;
    if (content) text += content;
  }
  return text;
}

export async function cli(dir: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli([...args, '--config', join(dir, 'gatehouse.yaml')], env);
}
