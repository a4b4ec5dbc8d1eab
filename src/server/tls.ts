/**
 * The server's TLS material: certificate and key loaded into a SecureContext, reloadable (on
 * SIGHUP) without touching live sessions. Listeners and STLS always ask for `current`, so a
 * reload affects only handshakes that start afterwards. Also the bounded wait for a handshake,
 * shared by implicit-TLS listeners and STLS.
 */
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContext, type SecureContextOptions, type TLSSocket } from 'node:tls';
import { PopgateError } from '../errors.ts';

/** Certificate and key, as files (reloadable) or PEM text. */
export type TlsSource =
  | { readonly certFile: string; readonly keyFile: string }
  | { readonly cert: string | Buffer; readonly key: string | Buffer };

/** Hardened defaults: TLS 1.2+, the server picks the cipher. */
const BASE: SecureContextOptions = { minVersion: 'TLSv1.2', honorCipherOrder: true };

/** Holds the current SecureContext and the options it was built from. */
export class TlsMaterial {
  readonly #source: TlsSource;
  #options: SecureContextOptions;
  #context: SecureContext;

  private constructor(source: TlsSource, options: SecureContextOptions) {
    this.#source = source;
    this.#options = options;
    this.#context = createSecureContext(options);
  }

  /** Loads certificate and key; throws ERR_SERVER_TLS (naming the file, never its content). */
  static async load(source: TlsSource): Promise<TlsMaterial> {
    const options = await readOptions(source);
    try {
      return new TlsMaterial(source, options);
    } catch (error) {
      throw new PopgateError(
        'ERR_SERVER_TLS',
        `TLS certificate and key do not load together: ${reason(error)}`,
        {
          cause: error,
        },
      );
    }
  }

  /** The context for handshakes starting now. */
  get current(): SecureContext {
    return this.#context;
  }

  /** The options of the current context (for `tls.Server#setSecureContext`). */
  get options(): SecureContextOptions {
    return this.#options;
  }

  /** True when the material comes from files and can be reloaded. */
  get reloadable(): boolean {
    return 'certFile' in this.#source;
  }

  /**
   * Re-reads the files and swaps the context. On any error the old context stays in use and
   * the error is thrown for the caller to log.
   */
  async reload(): Promise<void> {
    const options = await readOptions(this.#source);
    let context: SecureContext;
    try {
      context = createSecureContext(options);
    } catch (error) {
      throw new PopgateError(
        'ERR_SERVER_TLS',
        `reloaded TLS certificate and key do not load: ${reason(error)}`,
        {
          cause: error,
        },
      );
    }
    this.#options = options;
    this.#context = context;
  }
}

async function readOptions(source: TlsSource): Promise<SecureContextOptions> {
  if (!('certFile' in source)) return { ...BASE, cert: source.cert, key: source.key };
  // Both files are read before either failure is reported: an operator fixes both at once.
  const [cert, key] = await Promise.allSettled([readFile(source.certFile), readFile(source.keyFile)]);
  if (cert.status === 'fulfilled' && key.status === 'fulfilled')
    return { ...BASE, cert: cert.value, key: key.value };
  const problems: string[] = [];
  if (cert.status === 'rejected')
    problems.push(`the TLS certificate file ${source.certFile} (${reason(cert.reason)})`);
  if (key.status === 'rejected') problems.push(`the TLS key file ${source.keyFile} (${reason(key.reason)})`);
  throw new PopgateError('ERR_SERVER_TLS', `cannot read ${problems.join(' nor ')}`, {
    cause: cert.status === 'rejected' ? cert.reason : (key as PromiseRejectedResult).reason,
  });
}

function reason(error: unknown): string {
  if (error && typeof error === 'object' && 'code' in error) return String((error as { code: unknown }).code);
  return error instanceof Error ? error.message.split('\n')[0]! : 'unknown error';
}

/** Resolves true once the TLS handshake completed, false on error, close or timeout. */
export function waitForHandshake(socket: TLSSocket, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      socket.off('secure', onSecure);
      socket.off('error', onFail);
      socket.off('close', onFail);
      resolve(ok);
    };
    const onSecure = () => finish(true);
    const onFail = () => finish(false);
    const timer = setTimeout(onFail, timeoutMs);
    socket.once('secure', onSecure);
    socket.once('error', onFail);
    socket.once('close', onFail);
  });
}
