// A test-side AWS event stream codec (application/vnd.amazon.eventstream), written from
// the format, not from the gateway's: per message a prelude (total length, headers
// length, CRC32 of both), string headers, the payload and a CRC32 of all before it.

import { crc32 } from 'node:zlib';

export function awsFrame(eventType: string, payload: object): Buffer {
  const headers = Buffer.concat(
    Object.entries({ ':event-type': eventType, ':content-type': 'application/json', ':message-type': 'event' }).map(([name, value]) => {
      const v = Buffer.from(value);
      return Buffer.concat([Buffer.from([name.length]), Buffer.from(name), Buffer.from([7, v.length >> 8, v.length & 0xff]), v]);
    }),
  );
  const body = Buffer.from(JSON.stringify(payload));
  const prelude = Buffer.alloc(8);
  prelude.writeUInt32BE(16 + headers.length + body.length, 0);
  prelude.writeUInt32BE(headers.length, 4);
  const preludeCrc = Buffer.alloc(4);
  preludeCrc.writeUInt32BE(crc32(prelude), 0);
  const head = Buffer.concat([prelude, preludeCrc, headers, body]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(head), 0);
  return Buffer.concat([head, crc]);
}

/** Bedrock InvokeModelWithResponseStream: the model's event, base64 in a `chunk` frame. */
export function chunkFrame(modelEvent: object): Buffer {
  return awsFrame('chunk', { bytes: Buffer.from(JSON.stringify(modelEvent)).toString('base64'), p: 'abcd' });
}

/** Every message of a whole stream, CRCs checked: its event type (or exception type, for an exception), message type and JSON payload. */
export function readAwsFrames(stream: Buffer): { eventType: string; messageType: string; payload: Record<string, any> }[] {
  const out: { eventType: string; messageType: string; payload: Record<string, any> }[] = [];
  for (let at = 0; at < stream.length; ) {
    const total = stream.readUInt32BE(at);
    const headersLength = stream.readUInt32BE(at + 4);
    const frame = stream.subarray(at, at + total);
    if (frame.readUInt32BE(8) !== crc32(frame.subarray(0, 8))) throw new Error('prelude CRC');
    if (frame.readUInt32BE(total - 4) !== crc32(frame.subarray(0, total - 4))) throw new Error('message CRC');
    let eventType = '';
    let messageType = '';
    for (let h = 12; h < 12 + headersLength; ) {
      const n = frame.readUInt8(h);
      const name = frame.subarray(h + 1, h + 1 + n).toString();
      const len = frame.readUInt16BE(h + 2 + n);
      const value = frame.subarray(h + 4 + n, h + 4 + n + len).toString();
      if (name === ':event-type' || name === ':exception-type') eventType = value;
      if (name === ':message-type') messageType = value;
      h += 4 + n + len;
    }
    out.push({ eventType, messageType, payload: JSON.parse(frame.subarray(12 + headersLength, total - 4).toString()) });
    at += total;
  }
  return out;
}
