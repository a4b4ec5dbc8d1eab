export interface SummaryReader {
  feed(chunk: Uint8Array): void;
  count(label: 'tests' | 'pass' | 'fail' | 'cancelled' | 'skipped' | 'todo'): number;
}
export function createSummaryReader(): SummaryReader;
