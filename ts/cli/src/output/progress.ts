// A spinner on stderr for long waits, only when stderr is a terminal (never in logs or pipes).
const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/** Awaits `work`; if it takes longer than `delayMs` and stderr is a TTY, shows `label` with a spinner meanwhile. */
export async function withProgress<T>(label: string, work: Promise<T>, delayMs = 300): Promise<T> {
  if (!process.stderr.isTTY) return work;
  let frame = 0;
  let interval: NodeJS.Timeout | undefined;
  const delay = setTimeout(() => {
    interval = setInterval(() => {
      process.stderr.write(`\r${FRAMES[frame++ % FRAMES.length]} ${label}`);
    }, 100);
  }, delayMs);
  try {
    return await work;
  } finally {
    clearTimeout(delay);
    if (interval !== undefined) {
      clearInterval(interval);
      process.stderr.write("\r\x1b[2K");
    }
  }
}
