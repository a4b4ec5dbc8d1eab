import { SaslError } from '../errors.ts';

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict base64 decode (RFC 4648 §4, padding required, no whitespace) with a size cap.
 * Throws ERR_SASL_TOO_LARGE or ERR_SASL_MALFORMED; the message never echoes the input.
 */
export function decodeBase64Strict(text: string, maxLength = 64 * 1024): Buffer {
  if (text.length > maxLength) {
    throw new SaslError('ERR_SASL_TOO_LARGE', `a SASL message exceeded ${maxLength} octets`);
  }
  if (!B64.test(text)) throw new SaslError('ERR_SASL_MALFORMED', 'a SASL message is not valid base64');
  return Buffer.from(text, 'base64');
}

export function encodeBase64(data: string | Buffer): string {
  return (typeof data === 'string' ? Buffer.from(data, 'utf8') : data).toString('base64');
}

/** UTF-8 decode that refuses invalid sequences (ERR_SASL_MALFORMED). */
export function decodeUtf8Strict(bytes: Buffer, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new SaslError('ERR_SASL_MALFORMED', `${what} is not valid UTF-8`);
  }
}
