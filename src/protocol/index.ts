/** Pure POP3 wire code (no sockets): limits, lines, responses, commands, dot-stuffing, CAPA, redaction. */
export * from './capabilities.ts';
export * from './command.ts';
export * from './dot-stuffing.ts';
export * from './limits.ts';
export * from './line-reader.ts';
export * from './multiline.ts';
export * from './redact.ts';
export * from './response.ts';
