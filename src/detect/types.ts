// What a detector reports: an entity type and where it sits in the text (UTF-16
// offsets, end exclusive), with a confidence score in [0, 1].

export interface Detection {
  readonly type: string;
  readonly start: number;
  readonly end: number;
  readonly score: number;
}

/** The built-in entity types. Custom entities and deny lists add their own names. */
export const builtinEntityTypes = [
  'EMAIL',
  'PHONE',
  'US_SSN',
  'CREDIT_CARD',
  'IBAN',
  'IP_ADDRESS',
  'AWS_ACCESS_KEY',
  'AWS_SECRET_KEY',
  'GITHUB_TOKEN',
  'SLACK_TOKEN',
  'OPENAI_KEY',
  'ANTHROPIC_KEY',
  'GATEHOUSE_KEY',
  'JWT',
  'PRIVATE_KEY',
  'SECRET',
] as const;

export type BuiltinEntityType = (typeof builtinEntityTypes)[number];

/** The built-in entity types that are credentials (redacted from refused requests and recorded paths). */
export const credentialEntityTypes: readonly BuiltinEntityType[] = ['AWS_ACCESS_KEY', 'AWS_SECRET_KEY', 'GITHUB_TOKEN', 'SLACK_TOKEN', 'OPENAI_KEY', 'ANTHROPIC_KEY', 'GATEHOUSE_KEY', 'JWT', 'PRIVATE_KEY', 'SECRET'];
