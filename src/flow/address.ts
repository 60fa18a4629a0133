// Text forms of addresses held as 32-bit words (IPv4 in word 0; IPv6 as four words).

export function ipv4ToString(w: number): string {
  return `${w >>> 24}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.${w & 255}`;
}

/** RFC 5952 text: lower case, the longest run of two or more zero groups compressed. */
export function ipv6ToString(words: Uint32Array, at: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 4; i++) {
    const w = words[at + i];
    groups.push(w >>> 16, w & 0xffff);
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  // IPv4-mapped addresses read better in their usual mixed form.
  if (bestStart === 0 && bestLen === 5 && groups[5] === 0xffff) {
    return `::ffff:${ipv4ToString(words[at + 3])}`;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export function addressToString(version: number, words: Uint32Array, at: number): string {
  return version === 4 ? ipv4ToString(words[at]) : ipv6ToString(words, at);
}
