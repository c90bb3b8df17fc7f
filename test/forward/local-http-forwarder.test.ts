// The local forwarder's answer (undici dispatch, src/forward/upstream-answer.ts): its
// body read as chunks or as a stream, in order and whole; a slow reader holds the
// upstream back; cancelling, aborting and a cut upstream all end the upstream request
// and reach the reader as errors. Real sockets on 127.0.0.1:0.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createLocalHttpForwarder, ForwardAbort, type Forwarder } from '../../src/forward/index.js';

const big = Buffer.alloc(4 * 1024 * 1024, 'abcdefghijklmnopqrstuvwxyz');

describe('local forwarder answers', () => {
  let server: Server;
  let forwarder: Forwarder;
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();

  before(async () => {
    server = createServer((req, res) => handler(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    forwarder = createLocalHttpForwarder({ name: 't', origin, credential: { header: 'Authorization', value: 'Bearer upstream' }, ca: undefined, rejectUnauthorized: true, connectTimeoutMs: 2000, headersTimeoutMs: 2000, bodyTimeoutMs: 2000 });
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await forwarder.close();
  });

  const forward = (signal = new ForwardAbort()) => forwarder.forward({ method: 'GET', path: '/x', headers: { accept: 'text/plain' }, body: undefined, signal });

  /** An answer body written in pieces, and a promise of whether the upstream saw it cut off. */
  function upstreamWrites(pieces: readonly Buffer[], gapMs = 0): Promise<'finished' | 'cut'> {
    return new Promise((resolve) => {
      handler = (req, res) => {
        assert.equal(req.headers.authorization, 'Bearer upstream', 'the target credential is injected');
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.on('close', () => resolve(res.writableFinished ? 'finished' : 'cut'));
        void (async () => {
          for (const piece of pieces) {
            if (res.destroyed) return;
            if (!res.write(piece)) await new Promise((r) => res.once('drain', r));
            if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
          }
          res.end();
        })();
      };
    });
  }

  test('readChunks: every byte, in order, with a reader that holds the upstream back', async () => {
    const seen = upstreamWrites([big.subarray(0, 1 << 20), big.subarray(1 << 20)]);
    const answer = await forward();
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['content-type'], 'text/plain');
    const chunks: Buffer[] = [];
    let slow = 0;
    await answer.readChunks!(async (chunk) => {
      chunks.push(chunk);
      // Every tenth chunk waits: the upstream must pause, and nothing may be lost or reordered.
      if (chunks.length % 10 === 0) {
        slow++;
        await new Promise((r) => setTimeout(r, 2));
      }
    });
    assert.ok(slow > 0);
    assert.ok(Buffer.concat(chunks).equals(big));
    assert.equal(await seen, 'finished');
  });

  test('readChunks: a reader that throws stops the reading; cancel ends the upstream request', async () => {
    const seen = upstreamWrites([Buffer.from('first;'), Buffer.from('second;'), Buffer.from('third;')], 100);
    const answer = await forward();
    await assert.rejects(
      answer.readChunks!(() => {
        throw new Error('reader gave up');
      }),
      /reader gave up/,
    );
    answer.cancel!();
    assert.equal(await seen, 'cut');
  });

  test('readChunks: the abort signal, once the answer streams, ends the upstream request and rejects the reader', async () => {
    const seen = upstreamWrites([Buffer.from('first;'), Buffer.from('second;'), Buffer.from('third;')], 100);
    const abort = new ForwardAbort();
    const answer = await forward(abort);
    const got: string[] = [];
    const reading = answer.readChunks!((chunk) => {
      got.push(chunk.toString());
      abort.abort();
    });
    await assert.rejects(reading);
    assert.deepEqual(got, ['first;']);
    assert.equal(await seen, 'cut');
  });

  test('an abort before the answer: forward() rejects, and the upstream request ends', async () => {
    let cut!: () => void;
    const upstreamCut = new Promise<void>((resolve) => (cut = resolve));
    handler = (req) => req.socket.on('close', cut);
    const abort = new ForwardAbort();
    const pending = forward(abort);
    setTimeout(() => abort.abort(), 50);
    await assert.rejects(pending, (error: { code?: string }) => error.code === 'upstream_failed');
    await upstreamCut;
  });

  test('an upstream cut mid-answer rejects the reader', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
      setTimeout(() => res.socket?.destroy(), 20);
    };
    const answer = await forward();
    const got: string[] = [];
    await assert.rejects(answer.readChunks!((chunk) => void got.push(chunk.toString())));
    assert.deepEqual(got, ['partial']);
  });

  test('body: the same answer as a stream (as the agent reads it), whole, and destroy ends the upstream request', async () => {
    upstreamWrites([big.subarray(0, 3 << 20), big.subarray(3 << 20)]);
    const whole: Buffer[] = [];
    const slowSink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        whole.push(chunk);
        setImmediate(done);
      },
    });
    await pipeline((await forward()).body, slowSink);
    assert.ok(Buffer.concat(whole).equals(big));

    const seen = upstreamWrites([Buffer.from('first;'), Buffer.from('second;')], 100);
    const answer = await forward();
    for await (const chunk of answer.body) {
      assert.equal(String(chunk), 'first;');
      break; // the iterator destroys the stream
    }
    assert.equal(await seen, 'cut');
  });

  test('a 1xx before the answer is not the answer', async () => {
    handler = (_req, res) => {
      res.writeProcessing();
      res.writeHead(201, { 'content-type': 'text/plain' });
      res.end('made');
    };
    const answer = await forward();
    assert.equal(answer.status, 201);
    const got: Buffer[] = [];
    await answer.readChunks!((chunk) => void got.push(chunk));
    assert.equal(Buffer.concat(got).toString(), 'made');
  });
});
