/**
 * A secret held by the validator (the introspection client secret). It prints, serialises and
 * inspects as `[REDACTED]`; only {@link Secret.reveal} returns the value, at the point of use.
 */
const REDACTED = '[REDACTED]';

export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return REDACTED;
  }
}
