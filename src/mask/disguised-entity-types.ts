// The entity types in a text as policy `entities` conditions read them: found in the
// text as written and in its disguise view (disguise-view.ts), as masking finds them, so
// a rule that refuses prompts holding a card number is not passed by writing it with
// zero-width spaces, full-width or Arabic-Indic digits.

import { entityTypes } from '../detect/index.js';
import { disguiseView } from './disguise-view.js';

export function disguisedEntityTypes(text: string): ReadonlySet<string> {
  const types = entityTypes(text);
  const view = disguiseView(text);
  if (!view) return types;
  const seen = entityTypes(view.text);
  if (seen.size === 0) return types;
  return new Set([...types, ...seen]);
}
