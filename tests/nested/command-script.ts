// The sh script L1's init runs inside the chroot: environment, working directory, then
// the caller's argv (exec'd) or script. A file on the io share, because the kernel
// command line is too small and too mangled a channel for arbitrary commands.

export type L1Command = readonly string[] | { readonly script: string };

/** POSIX sh single-quoting: the word stays exactly as given. */
export function shQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function commandScript(command: L1Command, env: Readonly<Record<string, string>>, cwd: string): string {
  const lines = ["# written by tests/nested/command-script.ts; run by L1's /init with /bin/sh"];
  for (const [name, value] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`runInL1: invalid environment variable name ${JSON.stringify(name)}`);
    lines.push(`export ${name}=${shQuote(value)}`);
  }
  lines.push(`cd ${shQuote(cwd)} || exit 125`);
  if ("script" in command) {
    lines.push(command.script);
  } else {
    if (command.length === 0) throw new Error("runInL1: empty command");
    lines.push(`exec ${command.map(shQuote).join(" ")}`);
  }
  return lines.join("\n") + "\n";
}
