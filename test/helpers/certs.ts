// Test wrapper around the development CA (dev/certs.ts): a CA and one loopback server
// certificate in a fresh temp dir, removed by cleanup() (registered with t.after when given).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { createDevCa, type DevCa, type IssuedCertificate } from '../../dev/certs.ts';

export interface TestCerts {
  readonly dir: string;
  readonly ca: DevCa;
  readonly caCertPath: string;
  readonly caCertPem: string;
  /** A server certificate for localhost, 127.0.0.1 and ::1 (`server.crt` / `server.key`). */
  readonly server: IssuedCertificate;
  /** Removes the directory; safe to call twice. */
  cleanup(): Promise<void>;
}

/** Creates a CA and a loopback server certificate under os.tmpdir(). */
export async function createTestCerts(t?: Pick<TestContext, 'after'>): Promise<TestCerts> {
  const dir = await mkdtemp(join(tmpdir(), 'popgate-certs-'));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    const ca = await createDevCa(dir);
    const server = await ca.issue('server');
    t?.after(cleanup);
    return { dir, ca, caCertPath: ca.caCertPath, caCertPem: ca.caCertPem, server, cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
