/**
 * What a TLS failure means for the user, in one place for every TLS connection popgate opens
 * (POP3 client, OAuth endpoints, the server's issuer requests). A certificate that does not
 * verify is a configuration fault: retrying cannot help, so the CLI exits 78 and says how to fix
 * it. A handshake the network cut is temporary (75). An OpenSSL record error where a TLS record
 * was expected means the port speaks another protocol (plain POP3 on a TLS port, say).
 */

/** How a TLS failure is to be understood. */
export type TlsFailureKind = 'untrusted' | 'name' | 'expired' | 'not-tls' | 'network';

/** OpenSSL's verification results (X509_V_ERR_*) as Node reports them, by what the user must do. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
]);
const NAME = new Set(['ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH', 'IP_ADDRESS_MISMATCH']);
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
const NOT_TLS = new Set([
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'ERR_SSL_HTTP_REQUEST',
]);

/** The code Node put on a TLS error (or its cause), if any. */
function codeOf(error: unknown): string | undefined {
  for (let e = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
  }
  return undefined;
}

/** Classifies a TLS failure; `network` for anything that is not about the certificate or protocol. */
export function classifyTlsFailure(error: unknown): { kind: TlsFailureKind; code: string | undefined } {
  const code = codeOf(error);
  if (code === undefined) return { kind: 'network', code };
  if (UNTRUSTED.has(code)) return { kind: 'untrusted', code };
  if (NAME.has(code)) return { kind: 'name', code };
  if (EXPIRED.has(code)) return { kind: 'expired', code };
  if (NOT_TLS.has(code)) return { kind: 'not-tls', code };
  return { kind: 'network', code };
}

/** What to tell a user about a certificate failure of `what` (e.g. "the POP3 server"). */
export function certificateAdvice(kind: TlsFailureKind, what: string, host: string): string {
  switch (kind) {
    case 'untrusted':
      return `${what}'s certificate is not trusted: for a private CA, set ca to the CA certificate file (PEM)`;
    case 'name':
      return `${what}'s certificate does not name ${host}: connect by a name the certificate lists, or set servername`;
    case 'expired':
      return `${what}'s certificate is expired or not yet valid: check the server's certificate and this machine's clock`;
    case 'not-tls':
      return `${what} did not answer with TLS: this port does not speak TLS from the first byte`;
    case 'network':
      return `the TLS handshake with ${what} failed; try again later`;
  }
}
