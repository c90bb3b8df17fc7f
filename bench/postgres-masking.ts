// What masking profiles (entity detection) cost on PostgreSQL result rows: one gateway
// process with two connections to the same database, `plain` (no masking) and
// `profiles` (masking.profiles: [pii]), recording on; the same `select` of a table of
// mixed free text (a quarter of the rows carry an email, a phone number or a card
// number) read through each with node-postgres, alternated round by round. Prints, per
// connection, the median rows/s and MB/s of row data, the gateway's CPU per MB, and the
// ratio profiles / plain.
//
//   npm run build && node --import tsx bench/postgres-masking.ts
//
// Options (environment): BENCH_PG_MASK_ROWS (50000), BENCH_PG_MASK_ROUNDS (7).

import pg from 'pg';
import { createTestPostgresDatabase } from '../test/helpers/databases.js';
import { startGatewayProcess } from '../test/helpers/gateway-process.js';
import { processCpuSeconds } from './cpu.js';
import { freePort } from './postgres-gateway.js';

const rowCount = Number(process.env.BENCH_PG_MASK_ROWS ?? 50_000);
const rounds = Number(process.env.BENCH_PG_MASK_ROUNDS ?? 7);



const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const database = await createTestPostgresDatabase();
  if ('skip' in database) throw new Error(database.skip);
  const url = new URL(database.url);
  const dbname = url.pathname.slice(1);
  const direct = new pg.Client({ connectionString: database.url });
  await direct.connect();
  await direct.query('create table notes (id int primary key, body text, contact jsonb)');
  // Free text of about 200 bytes; every fourth row carries an entity.
  await direct.query(`insert into notes
    select g,
      'Customer ' || g || ' called about order ' || (g * 7919 % 100000) || ' on 2024-03-' || lpad((g % 28 + 1)::text, 2, '0') || ' 10:' || lpad((g % 60)::text, 2, '0') || ':00, version 2.' || (g % 10) || '.1; ' ||
      case g % 12 when 0 then 'reach them at user' || g || '@example.com' when 4 then 'call +1 415-555-' || lpad((g % 10000)::text, 4, '0') when 8 then 'card 4111 1111 1111 1111 on file' else 'no contact details were left in this note' end ||
      '. Follow-up scheduled, ticket closed after the second reply from the support team.',
      jsonb_build_object('tier', g % 5, 'note', case g % 12 when 0 then 'mail u' || g || '@example.org' else 'none' end)
    from generate_series(1, ${rowCount}) g`);
  const bytes = Number((await direct.query('select sum(octet_length(body) + octet_length(contact::text))::bigint as n from notes')).rows[0].n);
  await direct.end();

  const ports = { plain: await freePort(), profiles: await freePort() };
  const connection = (name: string, port: number, masking: string) => `  - name: ${name}
    type: postgres
    listen: { host: 127.0.0.1, port: ${port} }
    allowPlaintext: true
    target: postgres://${url.host}/${dbname}
    credential: { user: ${url.username || 'postgres'}, secret: "\${PG_SECRET}" }
    tls: { mode: disable }
    limits: { maxRows: 1000000, statementTimeout: 60s }
    ${masking}
    access: { groups: [bench] }`;
  const gateway = await startGatewayProcess(
    `gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
log: { level: warn }
masking:
  profiles:
    pii: { entities: [EMAIL, PHONE, US_SSN, CREDIT_CARD, IBAN, IP_ADDRESS] }
connections:
${connection('plain', ports.plain, 'masking: {}')}
${connection('profiles', ports.profiles, 'masking: { profiles: [pii] }')}
`,
    { env: { PG_SECRET: url.password || 'unused' } },
  );
  const token = await gateway.createKey('bench', ['bench']);
  const pid = gateway.child.pid!;
  const results: Record<'plain' | 'profiles', { rowsPerS: number[]; mbPerS: number[]; cpuPerMb: number[] }> = {
    plain: { rowsPerS: [], mbPerS: [], cpuPerMb: [] },
    profiles: { rowsPerS: [], mbPerS: [], cpuPerMb: [] },
  };
  try {
    const clients = {
      plain: new pg.Client({ host: '127.0.0.1', port: ports.plain, user: 'bench', password: token, database: dbname, ssl: false }),
      profiles: new pg.Client({ host: '127.0.0.1', port: ports.profiles, user: 'bench', password: token, database: dbname, ssl: false }),
    };
    await clients.plain.connect();
    await clients.profiles.connect();
    const read = async (name: 'plain' | 'profiles') => {
      const cpu0 = processCpuSeconds(pid) * 1000;
      const started = performance.now();
      const { rows } = await clients[name].query('select id, body, contact from notes');
      const seconds = (performance.now() - started) / 1000;
      const cpu = processCpuSeconds(pid) * 1000 - cpu0;
      if (rows.length !== rowCount) throw new Error(`${name}: ${rows.length} rows, expected ${rowCount}`);
      if (name === 'profiles' && rows.some((r: { body: string }) => /@example\.com|4111 1111/.test(r.body))) throw new Error('a value passed unmasked');
      return { rowsPerS: rowCount / seconds, mbPerS: bytes / 1e6 / seconds, cpuPerMb: cpu / (bytes / 1e6) };
    };
    for (const name of ['plain', 'profiles'] as const) await read(name); // warm-up
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (['plain', 'profiles'] as const) : (['profiles', 'plain'] as const);
      for (const name of order) {
        const r = await read(name);
        results[name].rowsPerS.push(r.rowsPerS);
        results[name].mbPerS.push(r.mbPerS);
        results[name].cpuPerMb.push(r.cpuPerMb);
      }
    }
    await clients.plain.end();
    await clients.profiles.end();
  } finally {
    await gateway.stop();
    await database.drop();
  }
  console.log(`postgres masking profiles: ${rowCount} rows, ${(bytes / 1e6).toFixed(1)} MB of values per read, ${rounds} rounds (medians)`);
  for (const name of ['plain', 'profiles'] as const) {
    const r = results[name];
    console.log(`  ${name.padEnd(9)} ${median(r.rowsPerS).toFixed(0).padStart(8)} rows/s  ${median(r.mbPerS).toFixed(1).padStart(6)} MB/s  gateway CPU ${median(r.cpuPerMb).toFixed(1)} ms/MB`);
  }
  const ratio = median(results.profiles.rowsPerS.map((x, i) => x / results.plain.rowsPerS[i]!));
  console.log(`  profiles / plain throughput: ${ratio.toFixed(2)}`);
}

await main();
