// Statement classes: the parse tree's statement kind to the class policy sees as
// `sql.<class>` (select, insert, ddl, drop …), and which class is the strictest when
// one name stands for several statements. Enforces:
// - a kind not listed is `ddl` when its name says it creates or alters an object, else `other`;
// - a class not in the order of strictness ranks after every listed one.

const statementClasses: Record<string, string> = {
  SelectStmt: 'select',
  InsertStmt: 'insert',
  UpdateStmt: 'update',
  DeleteStmt: 'delete',
  MergeStmt: 'merge',
  DropStmt: 'drop',
  DropRoleStmt: 'drop',
  DropdbStmt: 'drop',
  DropOwnedStmt: 'drop',
  DropTableSpaceStmt: 'drop',
  DropSubscriptionStmt: 'drop',
  TruncateStmt: 'truncate',
  GrantStmt: 'grant',
  GrantRoleStmt: 'grant',
  AlterDefaultPrivilegesStmt: 'grant',
  CreateRoleStmt: 'role',
  AlterRoleStmt: 'role',
  AlterRoleSetStmt: 'role',
  CopyStmt: 'copy',
  TransactionStmt: 'transaction',
  VariableSetStmt: 'set',
  VariableShowStmt: 'show',
  ExplainStmt: 'explain',
  ExecuteStmt: 'execute',
  DeallocateStmt: 'deallocate',
  DoStmt: 'do',
  CallStmt: 'call',
  VacuumStmt: 'maintenance',
  ClusterStmt: 'maintenance',
  ReindexStmt: 'maintenance',
  LockStmt: 'lock',
  ListenStmt: 'listen',
  UnlistenStmt: 'listen',
  NotifyStmt: 'notify',
  DeclareCursorStmt: 'select',
  FetchStmt: 'fetch',
  ClosePortalStmt: 'fetch',
  DiscardStmt: 'set',
  CheckPointStmt: 'maintenance',
  LoadStmt: 'load',
};

/** The class of a statement of parse-tree kind `kind` (`SelectStmt` → `select`). */
export function classOf(kind: string): string {
  return statementClasses[kind] ?? classifyByName(kind);
}

function classifyByName(kind: string): string {
  if (/^(Create|Alter|Rename|Comment|Define|Composite|CreateTableAs|View|Index|Rule|Sec)/.test(kind)) return 'ddl';
  return 'other';
}

/** Order of strictness, for reporting one class for several statements. */
const strictness = ['drop', 'truncate', 'grant', 'role', 'do', 'ddl', 'delete', 'update', 'merge', 'insert', 'copy', 'execute', 'call', 'lock', 'maintenance', 'load', 'other'];

export function strictestClass(classes: readonly string[]): string {
  let best: string | undefined;
  let bestRank = Infinity;
  for (const c of classes) {
    const rank = strictness.indexOf(c);
    const r = rank < 0 ? strictness.length : rank;
    if (r < bestRank) {
      best = c;
      bestRank = r;
    }
  }
  return best ?? 'empty';
}
