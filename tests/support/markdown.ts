/** Reading the repository's markdown in tests. */

/**
 * A markdown table's cells row by row (the rule row left out, `\|` kept inside a cell), so a
 * comparison survives prettier's column padding.
 */
export const tableCells = (table: string): string[][] =>
  table
    .split("\n")
    .filter((line) => line.startsWith("|") && !/^\|[-:| ]+\|$/.test(line))
    .map((line) =>
      line
        .split(/(?<!\\)\|/)
        .slice(1, -1)
        .map((c) => c.trim()),
    );
