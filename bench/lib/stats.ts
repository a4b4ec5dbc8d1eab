// Shared bench utilities: interleaved runs (each round runs every contender once, in a shuffled
// order, so drift hits all alike), medians, and throughput figures.

export interface Contender {
  readonly name: string;
  /**
   * Measured rounds for a contender too slow to repeat (default: all). A capped contender
   * skips the warm-up and runs in the first `maxRounds` measured rounds only.
   */
  readonly maxRounds?: number;
  /** One full run; resolves with the payload octets and messages it moved. */
  run(): Promise<{ bytes: number; messages: number }>;
}

export interface Sample {
  readonly seconds: number;
  readonly bytes: number;
  readonly messages: number;
}

export interface Summary {
  readonly name: string;
  readonly runs: number;
  readonly medianSeconds: number;
  readonly messagesPerSecond: number;
  readonly megabytesPerSecond: number;
  readonly samples: readonly Sample[];
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The order of one round: a shuffle from a fixed seed, so every run of a bench uses the same
 * orders. A plain rotation kept each contender behind the same predecessor in every round, and
 * the one that always followed a serial client's exiting session (Dovecot still tearing it
 * down) was measured 10-15 % slow.
 */
export function roundOrder<T>(items: readonly T[], round: number): T[] {
  const out = [...items];
  let seed = (round + 1) * 0x9e3779b1;
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export interface InterleaveOptions {
  /** Idle time before each run, so the previous run's teardown (processes exiting) is over. */
  settleMs?: number;
}

/** Runs `rounds` interleaved rounds (after one warm-up round that is not counted). */
export async function runInterleaved(
  contenders: readonly Contender[],
  rounds: number,
  onSample?: (name: string, sample: Sample, round: number) => void,
  options: InterleaveOptions = {},
): Promise<Summary[]> {
  const samples = new Map<string, Sample[]>(contenders.map((c) => [c.name, []]));
  for (let round = 0; round <= rounds; round++) {
    for (const c of roundOrder(contenders, round)) {
      if (c.maxRounds !== undefined && (round === 0 || round > c.maxRounds)) continue;
      if (options.settleMs) await new Promise((resolve) => setTimeout(resolve, options.settleMs));
      const start = process.hrtime.bigint();
      const { bytes, messages } = await c.run();
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (round === 0) continue; // warm-up
      const sample = { seconds, bytes, messages };
      samples.get(c.name)!.push(sample);
      onSample?.(c.name, sample, round);
    }
  }
  return contenders.map((c) => {
    const list = samples.get(c.name)!;
    const seconds = median(list.map((s) => s.seconds));
    const bytes = list[0]?.bytes ?? 0;
    const messages = list[0]?.messages ?? 0;
    return {
      name: c.name,
      runs: list.length,
      medianSeconds: seconds,
      messagesPerSecond: messages / seconds,
      megabytesPerSecond: bytes / 1e6 / seconds,
      samples: list,
    };
  });
}

/** popgate's time ratio to each other contender (>1: popgate is faster). */
export function ratios(summaries: readonly Summary[], subject: string): Record<string, number> {
  const mine = summaries.find((s) => s.name === subject);
  const out: Record<string, number> = {};
  if (!mine) return out;
  for (const s of summaries) if (s.name !== subject) out[s.name] = s.medianSeconds / mine.medianSeconds;
  return out;
}

export function formatTable(title: string, summaries: readonly Summary[], subject: string): string {
  const r = ratios(summaries, subject);
  const rows = summaries.map(
    (s) =>
      `| ${s.name} | ${s.medianSeconds.toFixed(3)} | ${s.messagesPerSecond.toFixed(0)} | ${s.megabytesPerSecond.toFixed(1)} | ${
        s.name === subject ? '—' : `${r[s.name]!.toFixed(2)}x`
      } |`,
  );
  return [
    `### ${title}`,
    '',
    `| client | median s | messages/s | MB/s | ${subject} speed-up |`,
    '|---|---:|---:|---:|---:|',
    ...rows,
    '',
  ].join('\n');
}

/**
 * One table, one speed-up column per subject (>1: the subject is faster than that row; a
 * subject's own cell is a dash).
 */
export function formatComparison(
  title: string,
  summaries: readonly Summary[],
  subjects: readonly string[],
): string {
  const r = subjects.map((subject) => ratios(summaries, subject));
  const rows = summaries.map(
    (s) =>
      `| ${s.name} | ${s.medianSeconds.toFixed(3)} | ${s.messagesPerSecond.toFixed(0)} | ${s.megabytesPerSecond.toFixed(1)} | ${r
        .map((ri, i) => (s.name === subjects[i] ? '—' : `${ri[s.name]!.toFixed(2)}x`))
        .join(' | ')} |`,
  );
  return [
    `### ${title}`,
    '',
    `| client | median s | messages/s | MB/s | ${subjects.map((x) => `${x} speed-up`).join(' | ')} |`,
    `|---|---:|---:|---:|${subjects.map(() => '---:').join('|')}|`,
    ...rows,
    '',
  ].join('\n');
}
