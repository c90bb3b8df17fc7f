// SCRAM-SHA-256 client (RFC 5802 §3, RFC 7677) and the md5 password hash, for the
// gateway's own login to the upstream database. PostgreSQL ignores the SCRAM user name
// (it uses the StartupMessage user), so the client-first-message carries `n=`; channel
// binding is not used (gs2 header "n,,").

import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export class ScramError extends Error {
  override readonly name = 'ScramError';
}

const hmac = (key: Buffer, data: string) => createHmac('sha256', key).update(data).digest();
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest();

export interface ScramClient {
  /** client-first-message (RFC 5802 §7): gs2 header + client-first-message-bare. */
  readonly clientFirst: string;
  /** Takes server-first-message, returns client-final-message. */
  clientFinal(serverFirst: string): string;
  /** Verifies server-final-message's ServerSignature; throws ScramError when it does not match. */
  verifyServerFinal(serverFinal: string): void;
}

export function createScramClient(password: string, options: { user?: string; nonce?: string } = {}): ScramClient {
  const clientNonce = options.nonce ?? randomBytes(18).toString('base64');
  const clientFirstBare = `n=${options.user ?? ''},r=${clientNonce}`;
  let expectedServerSignature: Buffer | undefined;

  return {
    clientFirst: `n,,${clientFirstBare}`,
    clientFinal(serverFirst) {
      const attrs = parseAttributes(serverFirst);
      const nonce = attrs.get('r');
      const salt = attrs.get('s');
      const iterations = Number(attrs.get('i'));
      if (!nonce || !salt || !Number.isInteger(iterations) || iterations < 1) throw new ScramError('malformed server-first-message');
      // RFC 5802 §5.1: the server's nonce must start with the client's.
      if (!nonce.startsWith(clientNonce) || nonce.length === clientNonce.length) throw new ScramError('server nonce does not extend the client nonce');
      if (iterations > 10_000_000) throw new ScramError(`iteration count ${iterations} is unreasonably high`);
      // SaltedPassword := Hi(Normalize(password), salt, i) — Hi is PBKDF2 with HMAC-SHA-256.
      const saltedPassword = pbkdf2Sync(password.normalize('NFKC'), Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
      const clientKey = hmac(saltedPassword, 'Client Key');
      const storedKey = sha256(clientKey);
      // c=biws is base64("n,,"): no channel binding.
      const clientFinalWithoutProof = `c=biws,r=${nonce}`;
      const authMessage = `${clientFirstBare},${serverFirst},${clientFinalWithoutProof}`;
      const clientSignature = hmac(storedKey, authMessage);
      const proof = Buffer.alloc(clientKey.length);
      for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
      expectedServerSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage);
      return `${clientFinalWithoutProof},p=${proof.toString('base64')}`;
    },
    verifyServerFinal(serverFinal) {
      const attrs = parseAttributes(serverFinal);
      if (attrs.has('e')) throw new ScramError(`server reported a SCRAM error: ${attrs.get('e')}`);
      const v = attrs.get('v');
      if (!v || !expectedServerSignature) throw new ScramError('malformed server-final-message');
      const got = Buffer.from(v, 'base64');
      // RFC 5802 §9: the client must verify the ServerSignature, in constant time.
      if (got.length !== expectedServerSignature.length || !timingSafeEqual(got, expectedServerSignature)) {
        throw new ScramError('server signature does not match: the server does not know the password');
      }
    },
  };
}

function parseAttributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0]!, part.slice(2));
  }
  return out;
}

/** AuthenticationMD5Password answer: "md5" + md5(md5(password + user) + salt), hex. */
export function md5Password(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password + user).digest('hex');
  return `md5${createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex')}`;
}
