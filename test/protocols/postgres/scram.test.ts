import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createScramClient, md5Password, ScramError } from '../../../src/protocols/postgres/scram.js';

// RFC 7677 §3: the SCRAM-SHA-256 example exchange.
const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';

describe('SCRAM-SHA-256 client', () => {
  test('reproduces the RFC 7677 example exchange', () => {
    const client = createScramClient('pencil', { user: 'user', nonce: 'rOprNGfwEbeRWgbNEkqO' });
    assert.equal(client.clientFirst, 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    assert.equal(client.clientFinal(serverFirst), 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
    client.verifyServerFinal('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  });

  test('security: a server that does not know the password is refused', () => {
    const client = createScramClient('pencil', { user: 'user', nonce: 'rOprNGfwEbeRWgbNEkqO' });
    client.clientFinal(serverFirst);
    assert.throws(() => client.verifyServerFinal('v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='), { name: 'ScramError', message: 'server signature does not match: the server does not know the password' });
  });

  test('security: a server nonce that does not extend the client nonce is refused', () => {
    const client = createScramClient('pencil', { nonce: 'abc' });
    assert.throws(() => client.clientFinal('r=xyzabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'), ScramError);
    assert.throws(() => createScramClient('p', { nonce: 'abc' }).clientFinal('r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'), ScramError);
  });

  test('md5 password hash matches PostgreSQL: md5(md5(password || user) || salt)', () => {
    // Expected value computed by PostgreSQL: select 'md5' || md5(md5('secretalice') || 'abcd')
    assert.equal(md5Password('alice', 'secret', Buffer.from('abcd')), 'md5c90bcafc0a2b54511742383e34d5dc9d');
  });
});
