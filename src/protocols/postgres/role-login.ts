// What a statement changes of how a role logs in: ALTER ROLE/USER … PASSWORD, NOLOGIN,
// VALID UNTIL, CONNECTION LIMIT, and ALTER ROLE … RENAME TO (a rename clears an MD5
// password, and the old name no longer logs in). psql's `\password` sends
// `ALTER USER <current_user> PASSWORD '<SCRAM verifier>'`. Aimed at the role the gateway
// logs in as upstream, any of them changes the credential every caller depends on:
// decide-statement.ts refuses that (rule `gateway-credential`); aimed at another role,
// it is the risky shape `role-login`, for policy to hold or deny.
// A role's session defaults (ALTER ROLE … SET / RESET, `default_transaction_read_only`,
// `search_path` …) apply to every later session of that role: aimed at the gateway's
// role, one caller changed every caller's sessions; refused alike. So are the defaults
// of every role (ALTER ROLE ALL … SET) and of the target's database (ALTER DATABASE …
// SET), which reach the gateway's sessions too (a role's own setting overrides them,
// but the gateway cannot know which it has). Scoped IN DATABASE another database, or
// aimed at another database or another role, they do not touch the gateway's sessions:
// policy decides (no risky shape: they change no login).

import type { Node } from './parse-tree-names.js';

export interface RoleLoginChange {
  /** The role named; undefined: the session's own (CURRENT_USER, SESSION_USER, CURRENT_ROLE). */
  readonly role: string | undefined;
  /** What it changes, as SQL says it: `PASSWORD`, `NOLOGIN`, `VALID UNTIL`, `CONNECTION LIMIT`, `RENAME`. */
  readonly change: string;
  /** Session defaults (SET / RESET), not how the role logs in. */
  readonly settings?: boolean;
  /** Every role's defaults: ALTER ROLE ALL, ALTER DATABASE … SET. */
  readonly everyRole?: boolean;
  /** Only sessions in this database (IN DATABASE, ALTER DATABASE's name). */
  readonly database?: string;
}

const loginOptions: Readonly<Record<string, string>> = { password: 'PASSWORD', validUntil: 'VALID UNTIL', connectionlimit: 'CONNECTION LIMIT' };

export function roleLoginChange(kind: string, node: Node): RoleLoginChange | undefined {
  if (kind === 'RenameStmt' && node.renameType === 'OBJECT_ROLE') return { role: typeof node.subname === 'string' ? node.subname : undefined, change: 'RENAME' };
  if (kind === 'AlterRoleSetStmt' || kind === 'AlterDatabaseSetStmt') return settingsChange(kind, node);
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

function settingsChange(kind: string, node: Node): RoleLoginChange {
  const set = node.setstmt as { kind?: string; name?: string } | undefined;
  const verb = set?.kind === 'VAR_RESET_ALL' ? 'RESET ALL' : `${set?.kind === 'VAR_RESET' ? 'RESET' : 'SET'} ${set?.name ?? ''}`.trim();
  if (kind === 'AlterDatabaseSetStmt') return { role: undefined, change: verb, settings: true, everyRole: true, database: String(node.dbname) };
  const spec = node.role as { roletype?: string; rolename?: string } | undefined;
  return {
    role: spec?.roletype === 'ROLESPEC_CSTRING' ? spec.rolename : undefined,
    change: verb,
    settings: true,
    ...(spec === undefined ? { everyRole: true } : {}),
    ...(typeof node.database === 'string' ? { database: node.database } : {}),
  };
}
