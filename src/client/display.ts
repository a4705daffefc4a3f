/** Text helpers for tools (tinykv-ctl): keys as text or hex, region ranges, aligned tables. */
import type { Peer, Region } from "../proto/metapb.js";

/** A key or value for a person: the text when it is printable ASCII, else 0x-prefixed hex. */
export function showBytes(b: Uint8Array): string {
  const buf = Buffer.from(b);
  if (buf.length === 0) return '""';
  const s = buf.toString("latin1");
  return /^[\x21-\x7e][\x20-\x7e]*$/.test(s) && !/^0x/i.test(s) ? s : `0x${buf.toString("hex")}`;
}

/** Parses a key typed by a person: `0x` + an even number of hex digits is bytes, anything else UTF-8 text. */
export function parseBytes(s: string): Buffer {
  if (/^0x([0-9a-f]{2})*$/i.test(s)) return Buffer.from(s.slice(2), "hex");
  return Buffer.from(s, "utf8");
}

export function showRange(r: Region): string {
  const start = r.startKey.length === 0 ? "-inf" : showBytes(r.startKey);
  const end = r.endKey.length === 0 ? "+inf" : showBytes(r.endKey);
  return `[${start}, ${end})`;
}

export function showPeer(p: Peer | undefined): string {
  return p ? `${p.id}@store${p.storeId}` : "-";
}

/** Rows under a header, columns padded to the widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n") + "\n";
}

/** Splits a shell line into words: whitespace separated, "double" or 'single' quotes group, \ escapes in double quotes. */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === "\\" && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated ${quote} quote`);
  if (inWord) words.push(cur);
  return words;
}
