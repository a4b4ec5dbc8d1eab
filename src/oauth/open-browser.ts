import { spawn } from 'node:child_process';

/**
 * Opens `url` in the system browser (RFC 8252 §4: native apps use the external user agent):
 * `open` on macOS, `xdg-open` on a Linux/BSD desktop. False when there is no desktop to open it on.
 */
export function openInBrowser(url: string, env: Readonly<Record<string, string | undefined>>): boolean {
  const command =
    process.platform === 'darwin'
      ? 'open'
      : process.platform !== 'win32' && (env.DISPLAY || env.WAYLAND_DISPLAY)
        ? 'xdg-open'
        : undefined;
  if (!command) return false;
  try {
    const child = spawn(command, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    child.unref();
    return true;
  } catch {
    return false;
  }
}
