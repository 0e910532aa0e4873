/**
 * The lines that take one secret from the install command's standard input and place it in a
 * root-owned file: refused when missing, written through a temporary file in the same directory
 * (printf is a builtin, so the value is in no process's argv; mktemp makes it 0600 root), left
 * alone when the content is the same, otherwise moved into place with its owner and mode and
 * named in `$changed`, so the push's actions restart or reload what reads it.
 */
export interface SecretFile {
  /** The shell variable it is read into. */
  readonly variable: string;
  /** What it is, for the error when it does not arrive. */
  readonly what: string;
  readonly dir: string;
  /** `install -d` mode and group of the directory. */
  readonly dirMode: string;
  readonly dirGroup: string;
  readonly path: string;
  /** owner:group and mode of the file. */
  readonly owner: string;
  readonly mode: string;
}

export function secretFileLines(f: SecretFile): string[] {
  return [
    `IFS= read -r ${f.variable} || true`,
    `if [ -z "$${f.variable}" ]; then`,
    `  echo "${f.what} must arrive on stdin" >&2`,
    "  exit 1",
    "fi",
    `sudo install -d -m ${f.dirMode} -o root -g ${f.dirGroup} ${f.dir}`,
    `tmp=$(sudo mktemp -p ${f.dir})`,
    `printf '%s' "$${f.variable}" | sudo tee "$tmp" >/dev/null`,
    `if sudo cmp -s "$tmp" ${f.path}; then`,
    '  sudo rm -f "$tmp"',
    "else",
    `  sudo chown ${f.owner} "$tmp"`,
    `  sudo chmod ${f.mode} "$tmp"`,
    `  sudo mv "$tmp" ${f.path}`,
    `  changed="$changed ${f.path}"`,
    "fi",
  ];
}
