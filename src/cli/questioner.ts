/**
 * Questions on the terminal for `popgate init`: an answer is checked when it is given and, when it
 * is wrong, the fault is shown and the question asked again. A flag's value is checked the same
 * way: on a terminal a bad one is shown and asked for; without a terminal it fails (exit 78)
 * naming the flag. Without a terminal nothing is asked: a question takes its flag, else its
 * default, else fails naming the flag to pass. Ctrl-C or Ctrl-D stops with nothing written.
 */
import { createInterface, type Interface } from 'node:readline/promises';
import { ConfigError } from '../errors.ts';
import type { CliContext } from './context.ts';

export interface Question {
  /** The config key the answer is for (named in errors). */
  readonly key: string;
  /** The flag that gives the answer, with a placeholder for the hint: `--account NAME`. */
  readonly flag: string;
  readonly prompt: string;
  /** The flag's value, when given. */
  readonly given: string | undefined;
  /** Offered as `[default]`; taken as is without a terminal. */
  readonly fallback?: string;
  /** A blank answer leaves the setting out. */
  readonly optional?: boolean;
  /** Returns the value to store; throws a ConfigError saying what is wrong. */
  readonly check: (answer: string) => unknown;
}

export interface Questioner {
  /** True when stdin is a terminal. */
  readonly interactive: boolean;
  /** How many questions were put on the terminal. */
  readonly asked: number;
  /** The checked value (undefined only for an optional question left blank). */
  value(question: Question): Promise<unknown>;
  /** The checked flag value, or undefined when the flag is absent (never asks, unless it is bad). */
  flagOnly(question: Question): Promise<unknown>;
  /** A y/N question; false without a terminal, on a blank answer, or on Ctrl-C/Ctrl-D. */
  confirm(text: string): Promise<boolean>;
  close(): void;
}

const STOPPED = 'popgate init stopped before the last answer; nothing was written';

export function questioner(ctx: CliContext): Questioner {
  const interactive = ctx.stdin.isTTY === true;
  let rl: Interface | undefined;
  let closed: Promise<never> | undefined;
  let asked = 0;
  const say = (text: string): void => {
    ctx.stdout.write(`  ! ${text}\n`);
  };
  /** One line from the terminal; rejects when the user ends input (Ctrl-D) or presses Ctrl-C. */
  const ask = (text: string): Promise<string> => {
    if (!rl) {
      rl = createInterface({ input: ctx.stdin, output: ctx.stdout, terminal: true });
      const opened = rl;
      rl.on('SIGINT', () => opened.close());
      closed = new Promise<never>((_, reject) => {
        opened.once('close', () => reject(new ConfigError('ERR_CONFIG_MISSING', STOPPED)));
      });
      closed.catch(() => undefined);
    }
    asked += 1;
    return Promise.race([rl.question(text), closed as Promise<never>]).then((line) => line.trim());
  };
  const flagName = (question: Question): string => question.flag.split(' ')[0] ?? question.flag;
  /** The checked value, or the fault as a ConfigError (anything else is rethrown). */
  const attempt = async (question: Question, answer: string): Promise<{ value: unknown } | ConfigError> => {
    try {
      return { value: await question.check(answer) };
    } catch (error) {
      if (error instanceof ConfigError) return error;
      throw error;
    }
  };
  const fromFlag = async (question: Question): Promise<{ value: unknown } | undefined> => {
    if (question.given === undefined) return undefined;
    const result = await attempt(question, question.given);
    if (!(result instanceof ConfigError)) return result;
    const message = `${flagName(question)}: ${result.message}`;
    if (!interactive) throw new ConfigError(result.code, message, { key: question.key });
    say(message);
    return undefined;
  };
  const fromTerminal = async (question: Question): Promise<unknown> => {
    const shown = `${question.prompt}${question.fallback ? ` [${question.fallback}]` : ''}: `;
    for (;;) {
      const answer = (await ask(shown)) || question.fallback || '';
      if (answer === '') {
        if (question.optional) return undefined;
        say('an answer is needed');
        continue;
      }
      const result = await attempt(question, answer);
      if (!(result instanceof ConfigError)) return result.value;
      say(result.message);
    }
  };
  return {
    interactive,
    get asked() {
      return asked;
    },
    async value(question) {
      const given = await fromFlag(question);
      if (given) return given.value;
      if (interactive) return fromTerminal(question);
      if (question.fallback !== undefined) {
        const result = await attempt(question, question.fallback);
        if (result instanceof ConfigError) throw result;
        return result.value;
      }
      if (question.optional) return undefined;
      throw new ConfigError(
        'ERR_CONFIG_MISSING',
        `"${question.key}" is needed: pass ${question.flag.split(' ')[0]} (or run popgate init on a terminal to be asked)`,
        { key: question.key },
      );
    },
    async flagOnly(question) {
      const given = await fromFlag(question);
      if (given) return given.value;
      return question.given === undefined ? undefined : fromTerminal(question);
    },
    async confirm(text) {
      if (!interactive) return false;
      try {
        return /^y(es)?$/i.test(await ask(`${text} [y/N]: `));
      } catch (error) {
        if (error instanceof ConfigError && error.message === STOPPED) return false;
        throw error;
      }
    },
    close() {
      rl?.close();
      rl = undefined;
    },
  };
}
