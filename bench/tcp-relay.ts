// A bare TCP relay for bench/postgres.ts: bytes from each client to the database and
// back, nothing read, nothing decided, nothing recorded. What any Node proxy costs on
// this machine before it does any work: the reference the gateway is shown beside.
// Prints its port on stdout.
//
//   node --import tsx bench/tcp-relay.ts <target-host> <target-port>

import { connect, createServer } from 'node:net';

const [host = '127.0.0.1', port = '5432'] = process.argv.slice(2);
const server = createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host, port: Number(port), noDelay: true });
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as { port: number }).port}\n`));
process.on('SIGTERM', () => process.exit(0));
