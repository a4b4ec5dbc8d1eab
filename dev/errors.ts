/**
 * Errors of the development tools (the demo and the test/bench helpers). They are not part of
 * popgate's public `ErrorCode` union: no shipped code throws them, and `docs/errors.md` lists
 * only what a library or CLI user can meet.
 */
export type DevErrorCode =
  /** A step of the demo (`npm start`) did not do what it says. */
  | 'ERR_DEMO_STEP'
  /** A development certificate could not be created (openssl failed). */
  | 'ERR_DEVTOOLS_CERT';

/** An error of the dev tools, with a stable `code` like popgate's own errors. */
export class DevToolsError extends Error {
  readonly code: DevErrorCode;

  constructor(code: DevErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    if (options.cause !== undefined) {
      // Non-enumerable, as on PopgateError: a serializer walking own fields never sees it.
      Object.defineProperty(this, 'cause', { value: options.cause, enumerable: false, writable: true });
    }
  }
}
