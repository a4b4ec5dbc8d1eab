// Types of secret-scan.mjs (a plain ESM module so that test/run.mjs can load it without tsx).
export interface Needle {
  readonly text: string;
  readonly form: 'exact' | 'jwt-signature' | 'base64' | 'base64url';
  readonly line: number;
}
export interface Finding {
  readonly ledgerLine: number;
  readonly form: Needle['form'];
  readonly file: string;
  readonly offset: number;
  readonly line: number;
}
export interface SecretScanner {
  readonly secrets: number;
  readonly ignored: number;
  readonly needles: number;
  scanText(text: string, from: number, onHit: (needle: Needle, start: number) => void): void;
  scanFile(path: string): { bytes: number; findings: Finding[] };
}
export const MIN_SECRET_LENGTH: number;
export function needlesFor(secret: string): Omit<Needle, 'line'>[];
export function createSecretScanner(ledgerLines: readonly string[]): SecretScanner;
export function readLedger(path: string): string[];
export function filesUnder(dir: string, exclude?: ReadonlySet<string>): string[];
export function scanForSecrets(
  ledgerLines: readonly string[],
  files: readonly string[],
): { secrets: number; ignored: number; bytes: number; findings: Finding[] };
