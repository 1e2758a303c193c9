// The guest script: the only thing vmctl puts on an instance. EC2 hands it to cloud-init
// (or any agent that runs user data), which runs it as root at first boot. It runs the
// command with its output in two files, uploads them through presigned S3 URLs while
// the command runs and once more at the end, uploads the exit status, then powers the
// instance off. Needs only `sh`, `curl` and `poweroff` (or `shutdown`) in the AMI; no
// IAM role, no agent. Pure: text in, text out.

/** EC2's limit on user data, before base64. */
export const MAX_USER_DATA_BYTES = 16 * 1024;

export interface ReportUrls {
  /** Presigned PUT of the command's stdout (the whole file each time). */
  readonly stdout: string;
  readonly stderr: string;
  /** Presigned PUT of the exit status ("<code>\n"), uploaded last. */
  readonly exit: string;
}

export interface GuestScriptInput {
  readonly serviceId: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly urls: ReportUrls;
  /** Seconds between uploads while the command runs; fractions need GNU or busybox sleep. */
  readonly flushSeconds: number;
}

/** `s` as one sh word: single quotes, each inner quote closed, escaped, reopened. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * The command as sh lines: exports, then `exec` of the quoted argv. Env names are shell
 * identifiers (the spec checks that), values anything but NUL.
 */
export function commandLines(args: readonly string[], env: Readonly<Record<string, string>> = {}): string[] {
  const exports = Object.entries(env).map(([name, value]) => `  export ${name}=${shellQuote(value)}`);
  return [...exports, `  exec ${args.map(shellQuote).join(" ")}`];
}

export function guestScript(input: GuestScriptInput): string {
  const lines = [
    "#!/bin/sh",
    `# vmctl aws-ec2 guest script for service ${input.serviceId.replace(/[^\w.-]/g, "?")} (generated).`,
    "# Runs the command, uploads its output and exit status to S3 through presigned URLs,",
    "# then powers the instance off. See the vmctl-plugin-aws-ec2 README.",
    `stdout_url=${shellQuote(input.urls.stdout)}`,
    `stderr_url=${shellQuote(input.urls.stderr)}`,
    `exit_url=${shellQuote(input.urls.exit)}`,
    `flush=${shellQuote(String(input.flushSeconds))}`,
    'work=$(mktemp -d 2>/dev/null) || { work=/tmp/vmctl.$$; mkdir -p "$work"; }',
    // Upload errors go to the script's stderr: cloud-init keeps it in its output log.
    'put() { curl -fsS --retry 3 --retry-delay 1 -m 120 -X PUT --upload-file "$1" "$2" >/dev/null; }',
    ': >"$work/stdout"; : >"$work/stderr"',
    "(",
    ...commandLines(input.args, input.env),
    ') </dev/null >"$work/stdout" 2>"$work/stderr" &',
    "child=$!",
    // An OS shutdown (StopInstances) sends SIGTERM to every process, the command's included
    // (systemd signals the whole service cgroup). The script only survives it to report the
    // exit it leads to: passing the signal on as well would deliver it to the command twice.
    "trap ':' TERM INT HUP",
    // The uploader: whole files, only when they grew, until told to finish. It is waited
    // for (not killed) so an upload of an older copy never lands after the final one.
    "(",
    "  last=",
    '  while [ ! -e "$work/done" ]; do',
    '    now="$(wc -c <"$work/stdout") $(wc -c <"$work/stderr")"',
    '    if [ "$now" != "$last" ]; then put "$work/stdout" "$stdout_url"; put "$work/stderr" "$stderr_url"; last=$now; fi',
    '    sleep "$flush"',
    "  done",
    ") &",
    "uploader=$!",
    // `wait` returns early (>128) when a trapped signal arrives: wait again while the
    // command lives; if it died meanwhile, a second wait still yields its own status.
    "status=",
    'while [ -z "$status" ]; do',
    '  wait "$child"; rc=$?',
    '  if [ "$rc" -gt 128 ]; then',
    '    if kill -0 "$child" 2>/dev/null; then continue; fi',
    '    wait "$child" 2>/dev/null; again=$?',
    '    [ "$again" -ne 127 ] && rc=$again',
    "  fi",
    "  status=$rc",
    "done",
    ': >"$work/done"',
    'while kill -0 "$uploader" 2>/dev/null; do wait "$uploader"; done',
    'put "$work/stdout" "$stdout_url"',
    'put "$work/stderr" "$stderr_url"',
    "printf '%s\\n' \"$status\" >\"$work/exit\"",
    'put "$work/exit" "$exit_url"',
    "poweroff || shutdown -h now",
    "",
  ];
  return lines.join("\n");
}
