// Security regression: SQL cursors and the protocol's portals share one namespace. A
// portal bound over `select name from users` (and described) died with its transaction,
// but the gateway kept its description under the name; `declare p cursor for select
// email from users` then made a cursor p, and an Execute of "p" ran the cursor with the
// stale description (a column "name"): the email addresses left unmasked. A DECLARE or
// CLOSE now forgets the portal of its name, also when the DECLARE was parsed earlier and
// runs at a later Execute; an Execute of a cursor's name is then refused (no description).
// Likewise a Bind the database refused (`cursor "n" already exists`) described the
// portal it did not replace: kept past ROLLBACK TO SAVEPOINT, it ran unmasked.
// And a SQL FETCH of a portal bound over `select email as e from users` answered with
// the portal's rows under "e", unmasked: the FETCH's own statement derives nothing.
// And a DEALLOCATE the database never ran (a Query failing before it, a Parse of it never
// executed) made the gateway forget a statement still prepared: a Bind to it was masked by
// column names only, and `select email as e` came back unmasked. So did a Parse of the
// unnamed statement the database skipped after an error in its batch: the gateway took
// the new text as the unnamed statement, the database kept the old one. And a Parse of
// `execute p` was decided (and masked) as the p of its Parse, while a p prepared again
// since ran at its Execute.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cstring, int16, int32, message, type Frame } from '../../../src/protocols/postgres/codec.js';
import { rawLogin } from '../../helpers/pg-raw.js';
import { startTestProxy, withProxyClients, type TestProxy } from '../../helpers/postgres-proxy.js';

const proxyOrSkip = await startTestProxy({ masking: { columns: new Map([['email', 'redact']]) } });
const skip = 'skip' in proxyOrSkip ? proxyOrSkip.skip : undefined;

const parse = (name: string, sql: string) => message('P', Buffer.concat([cstring(name), cstring(sql), int16(0)]));
const bind = (portal: string, statement: string) => message('B', Buffer.concat([cstring(portal), cstring(statement), int16(0), int16(0), int16(0)]));
const describePortal = (name: string) => message('D', Buffer.concat([Buffer.from('P'), cstring(name)]));
const describeStatement = (name: string) => message('D', Buffer.concat([Buffer.from('S'), cstring(name)]));
const execute = (portal: string, rows = 0) => message('E', Buffer.concat([cstring(portal), int32(rows)]));
const sync = () => message('S');
const query = (sql: string) => message('Q', cstring(sql));
const text = (frames: Frame[]) => frames.map((f) => f.body.toString('utf8')).join(' ');

describe('PostgreSQL proxy: an Execute of a cursor name is never described by a stale portal', { skip }, () => {
  const proxy = proxyOrSkip as TestProxy;
  withProxyClients(proxy, `create table users (id int, name text, email text);
      insert into users values (1, 'Ann', 'ann@example.com'), (2, 'Bob', 'bob@example.com');
      create function prepare_hidden() returns void language plpgsql as $$ begin execute 'prepare hidden as select email as e from users'; end $$`, () => undefined);

  test('a portal bound before, then DECLARE of its name in a simple query', async () => {
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      raw.write(parse('s1', 'select name from users'), describeStatement('s1'), bind('p', 's1'), sync());
      await raw.untilReady(1);
      raw.write(query('begin; declare p cursor for select email from users'));
      await raw.untilReady(1);
      raw.write(execute('p'), sync());
      const frames = await raw.untilReady(1);
      assert.ok(!/example\.com/.test(text(frames)), text(frames));
      assert.equal(frames.find((f) => f.type === 'D'), undefined);
      assert.match(text(frames.filter((f) => f.type === 'E')), /Rows cannot be masked without their description/);
      raw.write(query('rollback'));
      await raw.untilReady(1);
      // FETCH through SQL is described by its own answer, and masked.
      raw.write(query('begin; declare p cursor for select email from users; fetch all from p; rollback'));
      const fetched = await raw.untilReady(1);
      assert.ok(!/example\.com/.test(text(fetched)), text(fetched));
      assert.match(text(fetched), /\[EMAIL\]/);
    } finally {
      raw.close();
    }
  });

  test('a Bind the database refused does not describe the portal that kept its name', async () => {
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      raw.write(query('begin'));
      await raw.untilReady(1);
      raw.write(parse('se', 'select email from users'), bind('n', 'se'), sync());
      await raw.untilReady(1);
      raw.write(query('savepoint sp'));
      await raw.untilReady(1);
      raw.write(parse('sn', 'select name from users'), describeStatement('sn'), bind('n', 'sn'), sync());
      assert.match(text(await raw.untilReady(1)), /42P03/); // cursor "n" already exists
      raw.write(query('rollback to savepoint sp'));
      await raw.untilReady(1);
      raw.write(execute('n'), sync());
      const frames = await raw.untilReady(1);
      assert.ok(!/example\.com/.test(text(frames)), text(frames));
      assert.equal(frames.find((f) => f.type === 'D'), undefined);
      assert.match(text(frames), /Rows cannot be masked without their description/);
      raw.write(query('rollback'));
      await raw.untilReady(1);
    } finally {
      raw.close();
    }
  });

  test('a DECLARE parsed earlier and run at a later Execute forgets the portal too', async () => {
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      raw.write(parse('dcl', 'declare q cursor with hold for select email from users'), sync());
      await raw.untilReady(1);
      raw.write(parse('s2', 'select name from users'), describeStatement('s2'), bind('q', 's2'), sync());
      await raw.untilReady(1);
      raw.write(bind('', 'dcl'), execute(''), sync());
      await raw.untilReady(1);
      raw.write(execute('q'), sync());
      const frames = await raw.untilReady(1);
      assert.ok(!/example\.com/.test(text(frames)), text(frames));
      assert.equal(frames.find((f) => f.type === 'D'), undefined);
      raw.write(query('close all'));
      await raw.untilReady(1);
    } finally {
      raw.close();
    }
  });

  test('a SQL FETCH of a portal bound over a value derived from a masked column is refused', async () => {
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    const refused = /FETCH from portal "p1" is refused: it was bound over a statement whose result carries values of masked column "email"/;
    try {
      raw.write(query('begin'));
      await raw.untilReady(1);
      raw.write(parse('sd', 'select email as e from users order by id'), describeStatement('sd'), bind('p1', 'sd'), execute('p1', 1), sync());
      assert.match(text(await raw.untilReady(1)), /\[EMAIL\]/); // Execute: masked by its statement
      raw.write(query('fetch all from p1'));
      let frames = await raw.untilReady(1);
      assert.ok(!/example\.com/.test(text(frames)), text(frames));
      assert.match(text(frames), refused);
      raw.write(query('rollback'));
      await raw.untilReady(1);
      // The same through the extended protocol, and FORWARD / IN spellings.
      raw.write(query('begin'));
      await raw.untilReady(1);
      raw.write(parse('sd2', 'select lower(email) from users'), bind('p1', 'sd2'), parse('f', 'fetch forward 5 in p1'), bind('', 'f'), describeStatement('f'), execute(''), sync());
      frames = await raw.untilReady(1);
      assert.ok(!/example\.com/.test(text(frames)), text(frames));
      assert.match(text(frames), refused);
      raw.write(query('rollback'));
      await raw.untilReady(1);
      // A portal over columns under their own names is masked by them; MOVE returns no values.
      raw.write(query('begin'));
      await raw.untilReady(1);
      raw.write(parse('sp', 'select name, email from users order by id'), bind('p1', 'sp'), sync());
      await raw.untilReady(1);
      raw.write(query('move 1 in p1; fetch all from p1; rollback'));
      frames = await raw.untilReady(1);
      assert.ok(!/example\.com/.test(text(frames)), text(frames));
      assert.match(text(frames), /Bob.*\[EMAIL\]/);
    } finally {
      raw.close();
    }
  });

  test('a DEALLOCATE the database did not run leaves the statement known: a Bind to it is still masked', async () => {
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    const run = async (statement: string) => {
      raw.write(bind('', statement), describePortal(''), execute(''), sync());
      return text(await raw.untilReady(1));
    };
    try {
      raw.write(parse('s1', 'select email as e from users'), parse('s2', 'select lower(email) from users'), sync());
      await raw.untilReady(1);
      raw.write(query('select 1 / 0; deallocate s1'));
      assert.match(text(await raw.untilReady(1)), /division by zero/);
      let answer = await run('s1');
      assert.ok(!/example\.com/.test(answer), answer);
      assert.match(answer, /\[EMAIL\]/);
      raw.write(parse('d', 'deallocate s2'), sync()); // parsed, never executed
      await raw.untilReady(1);
      answer = await run('s2');
      assert.ok(!/example\.com/.test(answer), answer);
      assert.match(answer, /\[EMAIL\]/);
      // Run, it forgets: the name prepared again is only the new statement.
      raw.write(query('deallocate s1'));
      await raw.untilReady(1);
      raw.write(parse('s1', 'select name as e from users order by id'), sync());
      await raw.untilReady(1);
      assert.match(await run('s1'), /Ann.*Bob/);
      raw.write(bind('', 'd'), execute(''), sync());
      await raw.untilReady(1);
      raw.write(parse('s2', 'select name from users order by id'), sync());
      await raw.untilReady(1);
      assert.match(await run('s2'), /Ann.*Bob/);
      // A Close the database skipped (after an error in its batch) leaves the statement known too.
      raw.write(parse('s6', 'select email as e from users'), sync());
      await raw.untilReady(1);
      raw.write(parse('', 'select 1 / 0'), bind('', ''), execute(''), message('C', Buffer.concat([Buffer.from('S'), cstring('s6')])), sync());
      assert.match(text(await raw.untilReady(1)), /division by zero/);
      answer = await run('s6');
      assert.ok(!/example\.com/.test(answer), answer);
      assert.match(answer, /\[EMAIL\]/);
      // A statement prepared where the gateway cannot see (a function's dynamic SQL): its rows are refused.
      raw.write(query("select prepare_hidden()"));
      await raw.untilReady(1);
      answer = await run('hidden');
      assert.ok(!/example\.com/.test(answer), answer);
      assert.match(answer, /Rows of a statement the gateway never saw prepared cannot be masked/);
    } finally {
      raw.close();
    }
  });

  test('a Parse or Bind the database skipped after an error leaves the name as it was', async () => {
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    try {
      raw.write(parse('', 'select email as e from users'), sync());
      await raw.untilReady(1);
      raw.write(bind('', 'nope'), parse('', 'select name as e from users'), sync());
      assert.match(text(await raw.untilReady(1)), /26000/);
      raw.write(bind('', ''), describePortal(''), execute(''), sync());
      let answer = text(await raw.untilReady(1));
      assert.ok(!/example\.com/.test(answer), answer);
      assert.match(answer, /\[EMAIL\]/);
      // A named portal: the Bind skipped did not replace the one kept past ROLLBACK TO SAVEPOINT.
      raw.write(query('begin'));
      await raw.untilReady(1);
      raw.write(parse('se', 'select email as e from users'), bind('n2', 'se'), sync());
      await raw.untilReady(1);
      raw.write(query('savepoint sp'));
      await raw.untilReady(1);
      raw.write(parse('sn', 'select name as e from users'), describeStatement('sn'), sync());
      await raw.untilReady(1);
      raw.write(bind('', 'nope'), bind('n2', 'sn'), sync());
      assert.match(text(await raw.untilReady(1)), /26000/);
      raw.write(query('rollback to savepoint sp'));
      await raw.untilReady(1);
      raw.write(execute('n2'), sync());
      answer = text(await raw.untilReady(1));
      assert.ok(!/example\.com/.test(answer), answer);
      assert.match(answer, /Rows cannot be masked without their description/);
      raw.write(query('rollback'));
      await raw.untilReady(1);
    } finally {
      raw.close();
    }
  });

  test('a parsed EXECUTE of a statement prepared again since is refused, not run as the earlier one', async () => {
    const raw = await rawLogin(proxy.port, 'agent', proxy.database, proxy.token);
    const run = async (statement: string) => {
      raw.write(bind('', statement), describePortal(''), execute(''), sync());
      return text(await raw.untilReady(1));
    };
    const refused = /The prepared statement "p" this statement executes was prepared again \(or deallocated\) after it was parsed/;
    try {
      raw.write(query('prepare p as select name as e from users'));
      await raw.untilReady(1);
      raw.write(parse('x', 'execute p'), parse('later', 'execute q'), sync());
      await raw.untilReady(1);
      assert.match(await run('x'), /Ann/); // as parsed
      raw.write(query('deallocate p'));
      await raw.untilReady(1);
      raw.write(query('prepare p as select email as e from users'));
      await raw.untilReady(1);
      let answer = await run('x');
      assert.ok(!/example\.com/.test(answer), answer);
      assert.match(answer, refused);
      // A name prepared only after the Parse that executes it.
      raw.write(query('prepare q as select email as e from users'));
      await raw.untilReady(1);
      answer = await run('later');
      assert.ok(!/example\.com/.test(answer), answer);
      assert.match(answer, /The prepared statement "q" this statement executes was prepared again/);
      // Run by name with SQL EXECUTE, a parsed `execute p` is refused the same way.
      raw.write(query('deallocate p'));
      await raw.untilReady(1);
      raw.write(query('prepare p as select name as e from users'));
      await raw.untilReady(1);
      raw.write(parse('runp', 'execute p'), sync());
      await raw.untilReady(1);
      raw.write(query('deallocate p'));
      await raw.untilReady(1);
      raw.write(query('prepare p as select email as e from users'));
      await raw.untilReady(1);
      raw.write(query('execute runp'));
      answer = text(await raw.untilReady(1));
      assert.ok(!/example\.com/.test(answer), answer);
      assert.match(answer, /the prepared statement "runp" executes "p", which was prepared again/);
      // Parsed again, it is decided and masked as the p of now.
      raw.write(parse('y', 'execute p'), sync());
      await raw.untilReady(1);
      answer = await run('y');
      assert.ok(!/example\.com/.test(answer), answer);
      assert.match(answer, /\[EMAIL\]/);
    } finally {
      raw.close();
    }
  });
});
