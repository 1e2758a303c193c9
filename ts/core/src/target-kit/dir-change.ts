import { watch, type FSWatcher } from "node:fs";

/**
 * Resolves as soon as something in `dir` changes (inotify), or after `maxMs` at the
 * latest: the timer covers a change that happened before the watch was set up, and a
 * directory that is gone. Lets log following and exit waiting react in milliseconds
 * instead of a poll interval.
 */
export function changeIn(dir: string, maxMs: number): Promise<void> {
  return new Promise((resolve) => {
    let watcher: FSWatcher | undefined;
    const done = (): void => {
      clearTimeout(timer);
      watcher?.close();
      resolve();
    };
    const timer = setTimeout(done, maxMs);
    try {
      watcher = watch(dir, { persistent: false }, done);
      watcher.on("error", done);
    } catch {
      // No such directory (yet, or any more): the timer decides.
    }
  });
}
