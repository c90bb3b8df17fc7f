// The session settings inspection depends on, as the database reports them
// (ParameterStatus): at login (listener.ts) and whenever they change (database-messages.ts).

import { GatehouseError } from '../../errors/index.js';
import { BodyReader } from './codec.js';

/**
 * ParameterStatus (name, value): the database reports every change of client_encoding
 * and standard_conforming_strings, however it was made (SET is refused at inspection,
 * but set_config() or a function can change them too). Inspection reads SQL as UTF-8
 * with standard-conforming strings, so any other setting ends the session before
 * another statement is read: with `off`, `'a\''; select …` is a literal to the gateway
 * and two statements to the database.
 */
export function checkParameterStatus(body: Buffer): void {
  const r = new BodyReader(body);
  const name = r.cstring().toLowerCase();
  if (name === 'client_encoding') {
    const value = r.cstring();
    if (!/^(utf-?8|unicode|sql_ascii)$/i.test(value)) {
      throw new GatehouseError('sql_not_supported', { message: `The client encoding was changed to ${value}; only UTF8 can be inspected, so the session ends.` });
    }
  } else if (name === 'standard_conforming_strings') {
    const value = r.cstring();
    if (value !== 'on') {
      throw new GatehouseError('sql_not_supported', { message: `standard_conforming_strings was changed to ${value}; only SQL with standard-conforming strings can be inspected, so the session ends.` });
    }
  }
}
