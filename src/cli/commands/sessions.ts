import { getExchange, listExchanges, maxPageSize, type ExchangeSummary } from '../../audit/index.js';
import { CliError } from '../cli-error.js';
import { oneLine, textBlock } from '../terminal-text.js';
import { withStore } from '../with-store.js';
import { printTable } from './keys.js';
import { sessionStatements, sqlSessionLines } from './sql-session-lines.js';
import { replayLines } from './replay.js';
import { filterFromOptions, type SearchOptions } from './search-options.js';
import { hintUnmatchedFilters } from './search-hints.js';

export interface SessionsOptions extends SearchOptions {
  readonly config?: string | undefined;
  readonly connection?: string | undefined;
  readonly subject?: string | undefined;
  readonly decision?: string | undefined;
  readonly operation?: string | undefined;
  readonly since?: string | undefined;
  readonly limit?: string | undefined;
  readonly json?: boolean | undefined;
}

export async function sessionsCommand(action: string | undefined, args: readonly string[], options: SessionsOptions): Promise<void> {
  await withStore(options.config, async (store, config) => {
    switch (action) {
      case 'list': {
        const limit = options.limit === undefined ? 20 : Number(options.limit);
        if (!Number.isInteger(limit) || limit < 1) throw new CliError('--limit must be a positive integer');
        // Pages of at most maxPageSize, newest first, until the limit is reached.
        const filter = filterFromOptions(options);
        const items: ExchangeSummary[] = [];
        let before: number | undefined;
        do {
          const page = await listExchanges(store.db, { ...filter, limit: Math.min(limit - items.length, maxPageSize), before });
          items.push(...page.items);
          before = page.next;
        } while (before !== undefined && items.length < limit);
        if (items.length === 0) await hintUnmatchedFilters(store.db, filter, config);
        if (options.json) {
          process.stdout.write(`${JSON.stringify(items)}\n`);
          return;
        }
        printTable(
          ['ID', 'STARTED', 'CONNECTION', 'OPERATION', 'SUBJECT', 'DECISION', 'STATUS', 'MS'],
          // An allowed request the gateway still refused (a limit's 429, a 413) shows its code: `allow  429` alone read as the target's answer.
          items.map((s) => [s.id, s.startedAt, s.connection, s.operation, s.subject ?? '-', s.decision + (s.decision === 'deny' && s.rules.length ? ` (${s.rules.join(',')})` : ''), `${s.status ?? '-'}${s.errorCode ? ` ${s.errorCode}` : ''}${s.complete ? '' : ' incomplete'}`, String(s.durationMs ?? '-')]),
        );
        return;
      }
      case 'show': {
        const id = args[0];
        if (!id) throw new CliError('usage: gatehouse sessions show ID');
        const exchange = await getExchange(store.db, id);
        if (!exchange) throw new CliError(`no session with id "${id}"`, 1);
        if (options.json) {
          process.stdout.write(`${JSON.stringify(exchange, null, 2)}\n`);
          return;
        }
        const header = [
          `session   ${exchange.id}`,
          `started   ${exchange.startedAt}   ended ${exchange.endedAt ?? '-'}   ${exchange.durationMs ?? '-'} ms (first byte ${exchange.ttfbMs ?? '-'} ms)`,
          `identity  ${exchange.subject ?? '(none)'} [${exchange.identityKind ?? '-'}] via ${exchange.authMethod ?? '-'} ${exchange.credentialId ?? ''}  groups: ${exchange.groups.join(', ') || '-'}`,
          `client    ${exchange.clientAddress ?? '-'}`,
          `request   ${exchange.connection}  ${exchange.operation}  ${exchange.request.method ?? ''} ${exchange.request.path ?? ''}${exchange.model ? `  model ${exchange.model}` : ''}${exchange.stream ? '  stream' : ''}`,
          `decision  ${exchange.decision}  rules: ${exchange.rules.join(', ') || '-'}  (${exchange.reason ?? '-'}, policy ${exchange.policyVersion ?? '-'})`,
          ...(exchange.approval ? [`approval  review ${exchange.approval.reviewId}, via ${exchange.approval.via ?? '-'}`] : []),
          `result    status ${exchange.status ?? '-'}${exchange.complete ? '' : '  INCOMPLETE'}${exchange.errorCode ? `  error ${exchange.errorCode}${exchange.errorDetail ? `: ${exchange.errorDetail}` : ''}` : ''}  in ${exchange.bytesIn} B, out ${exchange.bytesOut} B`,
        ];
        const lines = header.map(oneLine);
        // Masked values by entity type (answer and scrubbed request), so a reader of the record knows what was hidden.
        if (exchange.maskCounts) lines.push(`masked    ${Object.entries(exchange.maskCounts).map(([type, n]) => `${type} ${n}`).join(', ')}`);
        const isSql = exchange.operation.startsWith('sql.');
        if (isSql) lines.push(...(await sqlSessionLines(store.db, exchange)));
        if (!isSql && exchange.request.promptText) lines.push('', '--- prompt ---', indented(exchange.request.promptText));
        if (isSql) {
          // The SQL lines carry the statement and its result.
        } else if (exchange.response.text) lines.push('', '--- answer ---', indented(exchange.response.text));
        else if (exchange.response.body) lines.push('', `--- response body${exchange.response.truncated ? ' (truncated)' : ''} ---`, indented(exchange.response.body));
        if (exchange.response.usage) lines.push('', `usage     ${JSON.stringify(exchange.response.usage)}`);
        process.stdout.write(`${textBlock(lines.join('\n'))}\n`);
        return;
      }
      case 'replay': {
        const id = args[0];
        if (!id) throw new CliError('usage: gatehouse sessions replay ID');
        const exchange = await getExchange(store.db, id);
        if (!exchange) throw new CliError(`no session with id "${id}"`, 1);
        if (options.json) {
          process.stdout.write(`${JSON.stringify(exchange, null, 2)}\n`);
          return;
        }
        const statements = exchange.operation === 'sql.session' ? await sessionStatements(store.db, exchange.id) : [];
        process.stdout.write(`${textBlock(replayLines(exchange, statements).join('\n'))}\n`);
        return;
      }
      default:
        throw new CliError('usage: gatehouse sessions list|show|replay');
    }
  });
}

/**
 * A recorded prompt or answer, every line indented: the caller wrote it, and at the
 * margin a line such as `--- answer ---` would read as the record's own section.
 */
function indented(text: string): string {
  return text.replace(/^/gm, '  ');
}
