// A spinner on stderr for long waits, only when stderr is a terminal (never in logs or pipes).
const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/**
 * Awaits `work`; if it takes longer than `delayMs` and stderr is a TTY, shows `label` with
 * a spinner meanwhile, until `quiet` fires (something else, such as pull progress, is
 * about to draw on stderr).
 */
export async function withProgress<T>(label: string, work: Promise<T>, delayMs = 300, quiet?: AbortSignal): Promise<T> {
  if (!process.stderr.isTTY || quiet?.aborted) return work;
  let frame = 0;
  let interval: NodeJS.Timeout | undefined;
  const delay = setTimeout(() => {
    interval = setInterval(() => {
      process.stderr.write(`\r${FRAMES[frame++ % FRAMES.length]} ${label}`);
    }, 100);
  }, delayMs);
  const stop = (): void => {
    clearTimeout(delay);
    if (interval !== undefined) {
      clearInterval(interval);
      interval = undefined;
      process.stderr.write("\r\x1b[2K");
    }
  };
  quiet?.addEventListener("abort", stop, { once: true });
  try {
    return await work;
  } finally {
    quiet?.removeEventListener("abort", stop);
    stop();
  }
}
