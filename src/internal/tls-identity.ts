/**
 * The certificate identity check for every TLS connection popgate opens (RFC 6125 §6; RFC 9525).
 *
 * A host name is checked by Node's `tls.checkServerIdentity`. An IP literal is checked only
 * against the certificate's iPAddress subject alternative names, through OpenSSL
 * (`X509Certificate.checkIP`): Node 22.23 and 24.17–24.20 broke `checkServerIdentity` for IPv6
 * literals (nodejs/node#64144: `::1` no longer matched an `IP Address:::1` SAN), and parsing the
 * `subjectaltname` text ourselves would be a second, weaker matcher. An IP literal is never sent as
 * the TLS server name (RFC 6066 §3 allows only host names in SNI): see {@link serverNameFor}.
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';

/** `host` without the brackets of a URL's IPv6 form (`[::1]` → `::1`). */
function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** True when `host` is an IPv4 or IPv6 literal (bracketed or not). */
export function isIpLiteral(host: string): boolean {
  return isIP(unbracket(host)) !== 0;
}

/** The SNI name to send for `host`: the host name itself, or undefined for an IP literal. */
export function serverNameFor(host: string): string | undefined {
  return isIpLiteral(host) ? undefined : host;
}

/** The error Node's own check returns, so callers see one shape for both kinds of host. */
function altNameError(host: string, cert: PeerCertificate): Error {
  const reason = `IP: ${host} is not in the cert's list: ${cert.subjectaltname ?? '(no subject alternative names)'}`;
  return Object.assign(new Error(`Hostname/IP does not match certificate's altnames: ${reason}`), {
    code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    reason,
    host,
  });
}

/**
 * `tls.checkServerIdentity` with IP literals matched by OpenSSL: undefined when `cert` names
 * `host`, else the error to fail the handshake with. Pass it as `checkServerIdentity`.
 */
export function checkServerIdentityStrict(host: string, cert: PeerCertificate): Error | undefined {
  const bare = unbracket(host);
  if (isIP(bare) === 0) return checkServerIdentity(host, cert);
  if (!cert.raw) return altNameError(host, cert);
  try {
    return new X509Certificate(cert.raw).checkIP(bare) === undefined ? altNameError(host, cert) : undefined;
  } catch {
    // A scoped address (fe80::1%eth0) cannot be in a certificate: OpenSSL refuses to parse it.
    return altNameError(host, cert);
  }
}
