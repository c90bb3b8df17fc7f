// What a statement changes of how a role logs in: ALTER ROLE/USER … PASSWORD, NOLOGIN,
// VALID UNTIL, CONNECTION LIMIT, and ALTER ROLE … RENAME TO (a rename clears an MD5
// password, and the old name no longer logs in). psql's `\password` sends
// `ALTER USER <current_user> PASSWORD '<SCRAM verifier>'`. Aimed at the role the gateway
// logs in as upstream, any of them changes the credential every caller depends on:
// decide-statement.ts refuses that (rule `gateway-credential`); aimed at another role,
// it is the risky shape `role-login`, for policy to hold or deny.

import type { Node } from './parse-tree-names.js';

export interface RoleLoginChange {
  /** The role named; undefined: the session's own (CURRENT_USER, SESSION_USER, CURRENT_ROLE). */
  readonly role: string | undefined;
  /** What it changes, as SQL says it: `PASSWORD`, `NOLOGIN`, `VALID UNTIL`, `CONNECTION LIMIT`, `RENAME`. */
  readonly change: string;
}

const loginOptions: Readonly<Record<string, string>> = { password: 'PASSWORD', validUntil: 'VALID UNTIL', connectionlimit: 'CONNECTION LIMIT' };

export function roleLoginChange(kind: string, node: Node): RoleLoginChange | undefined {
  if (kind === 'RenameStmt' && node.renameType === 'OBJECT_ROLE') return { role: typeof node.subname === 'string' ? node.subname : undefined, change: 'RENAME' };
  if (kind !== 'AlterRoleStmt') return undefined;
  const changes: string[] = [];
  for (const option of (node.options as Node[] | undefined) ?? []) {
    const def = option.DefElem as { defname?: string; arg?: { Boolean?: { boolval?: boolean } } } | undefined;
    const name = def?.defname ?? '';
    if (loginOptions[name]) changes.push(loginOptions[name]);
    else if (name === 'canlogin' && def?.arg?.Boolean?.boolval !== true) changes.push('NOLOGIN');
  }
  if (changes.length === 0) return undefined;
  const spec = node.role as { roletype?: string; rolename?: string } | undefined;
  return { role: spec?.roletype === 'ROLESPEC_CSTRING' ? spec.rolename : undefined, change: changes.join(', ') };
}
