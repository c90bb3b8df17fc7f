// Redacts credentials (keys, tokens, private keys, JWTs, `password: …`) in text that is
// about to be recorded but was never forwarded: a refused request. A request denied
// because it carried a secret (the secrets-in-prompts pack) must not leave that secret
// in the audit store, readable by everyone who reads recordings. With audit.raw the
// caller's body is still kept, sealed.

import { credentialEntityTypes, type BuiltinEntityType } from '../detect/index.js';
import { maskJsonText } from './json-masker.js';
import { MaskPlanner } from './plan.js';

/** The built-in entity types that are credentials. */
export const credentialEntities: readonly BuiltinEntityType[] = credentialEntityTypes;

/** Returns `(text) => text` with every credential replaced by its type label (`[OPENAI_KEY]`); JSON stays JSON. */
export function credentialRedactor(): (text: string) => string {
  const plan = new MaskPlanner([{ name: 'credentials', entities: credentialEntities, operator: 'redact', keepLast: 0, applyTo: 'both' }]).plan(['credentials'], 'request')!;
  return (text) => {
    const counts = {};
    const masked = maskJsonText(text, plan, counts);
    // Unchanged text is returned as it was (re-serialised JSON would differ in spacing).
    return Object.keys(counts).length === 0 ? text : masked;
  };
}
