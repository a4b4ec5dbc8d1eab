/**
 * Whether a process exists on this host, and when it started: the two facts every stale-lock and
 * leftover-file judgement needs. One copy, so EPERM (the process exists but is someone else's)
 * counts as alive everywhere, and a start time read from /proc detects a reused pid.
 */
import { readFile } from 'node:fs/promises';

/** Whether a process with this pid exists on this host (EPERM counts as alive). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22), or `-` where
 * there is no /proc or the process is gone. Two processes with one pid have different values.
 */
export async function processStartTime(pid: number): Promise<string> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may contain spaces and parentheses; fields after the last ')' are fixed.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? '-';
  } catch {
    return '-';
  }
}
