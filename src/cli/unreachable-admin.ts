// The error of a CLI command that could not reach the admin API. fetch() says only
// "fetch failed"; the reason is in its cause (ECONNREFUSED, a certificate not trusted).
// An HTTPS admin listener with a private CA is the common case: the CLI trusts only the
// system CAs unless NODE_EXTRA_CA_CERTS names the CA, so the message says so.

import { CliError } from './cli-error.js';

const certificateProblem = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/;

export function unreachableAdmin(origin: string, error: unknown): CliError {
  const cause = error instanceof Error && error.cause instanceof Error ? (error.cause as NodeJS.ErrnoException) : undefined;
  const why = cause ? `${cause.code !== undefined && !cause.message.includes(cause.code) ? `${cause.code}: ` : ''}${cause.message}` : error instanceof Error ? error.message : String(error);
  const hint =
    cause?.code !== undefined && certificateProblem.test(cause.code)
      ? ". The admin API's TLS certificate is not trusted here: give its CA to the CLI with NODE_EXTRA_CA_CERTS=/path/to/ca.pem, and reach it by a name its certificate holds (--admin https://NAME:PORT)"
      : '';
  return new CliError(`cannot reach the admin API at ${origin}: ${why}${hint}`, 1);
}
