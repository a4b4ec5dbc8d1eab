/**
 * The one loopback rule. Plaintext POP3, a plaintext listener and `http://` OAuth endpoints are
 * allowed only on loopback, so this is a security boundary and every layer asks here.
 *
 * A host name in configuration ({@link isLoopbackHost}) is loopback when it is:
 *   - an IPv4 literal in 127.0.0.0/8 (`127.0.0.1`, `127.1.2.3`);
 *   - the IPv6 literal ::1 in any textual form (`::1`, `0:0:0:0:0:0:0:1`, `[::1]`);
 *   - the name `localhost`, in any letter case (DNS names are case-insensitive, RFC 4343).
 * Nothing else: not `localhost.` (an absolute name goes to the resolver's search rules), not
 * `*.localhost` (RFC 6761 §6.3 asks resolvers to answer it with loopback, but many stub resolvers
 * and all corporate DNS forwarders do not, so `a.localhost` may reach the network; RFC 8252 §8.3
 * itself advises a loopback IP literal over any name), not IPv4-mapped IPv6 (`::ffff:127.0.0.1`:
 * write 127.0.0.1), and not a scoped address (`::1%lo`).
 *
 * A socket peer address ({@link isLoopbackAddress}) is an IP literal from the kernel, never a
 * name: 127.0.0.0/8, ::1, and the IPv4-mapped form `::ffff:127.x.y.z` that a dual-stack socket
 * reports for an IPv4 loopback peer.
 */
import { BlockList, isIP } from 'node:net';

const V4_LOOPBACK = new BlockList();
V4_LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
const V6_LOOPBACK = new BlockList();
V6_LOOPBACK.addAddress('::1', 'ipv6');

/** True when `host` (a configured host name or IP literal, optionally `[IPv6]`) is loopback. */
export function isLoopbackHost(host: string): boolean {
  if (typeof host !== 'string') return false;
  const inner = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (inner !== host && isIP(inner) !== 6) return false;
  const family = isIP(inner);
  if (family === 4) return V4_LOOPBACK.check(inner, 'ipv4');
  if (family === 6) return !inner.includes('%') && V6_LOOPBACK.check(inner, 'ipv6');
  return host.toLowerCase() === 'localhost';
}

/** True when `address` (a socket's `remoteAddress` or `localAddress`) is a loopback IP. */
export function isLoopbackAddress(address: string): boolean {
  if (typeof address !== 'string') return false;
  const family = isIP(address);
  if (family === 4) return V4_LOOPBACK.check(address, 'ipv4');
  if (family !== 6 || address.includes('%')) return false;
  // V4_LOOPBACK matches an IPv6 address only in its IPv4-mapped form (::ffff:127.x.y.z).
  return V6_LOOPBACK.check(address, 'ipv6') || V4_LOOPBACK.check(address, 'ipv6');
}
