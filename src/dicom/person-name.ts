/**
 * Person Name (PN) values (PS3.5 §6.2.1): up to three component groups (alphabetic, ideographic,
 * phonetic) separated by "=", each of up to five components separated by "^".
 */
export interface PersonNameGroups {
  readonly Alphabetic?: string;
  readonly Ideographic?: string;
  readonly Phonetic?: string;
}

const GROUP_NAMES = ['Alphabetic', 'Ideographic', 'Phonetic'] as const;

/** The DICOM JSON form of one PN value (PS3.18 F.2.2). */
export function personNameGroups(value: string): PersonNameGroups {
  const groups: Record<string, string> = {};
  value.split('=').forEach((group, i) => {
    const name = GROUP_NAMES[i];
    const trimmed = group.replace(/\^+$/, '');
    if (name && trimmed !== '') groups[name] = trimmed;
  });
  return groups;
}

/**
 * Folds text for name matching: compatibility forms unified (full-width Latin, half-width kana),
 * Latin accents removed, case ignored. Ideographs and kana (with their voicing marks) are kept.
 */
export function foldName(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '') // Latin diacritics only: kana voicing marks must survive
    .normalize('NFKC')
    .toLowerCase();
}

/**
 * The words a fuzzy search can match the start of: every component of every group, split at
 * spaces, folded. "Müller^Hans Peter=山田^太郎" gives müller→muller, hans, peter, 山田, 太郎.
 */
export function nameTokens(value: string): string[] {
  const tokens = new Set<string>();
  for (const group of value.split('=')) {
    for (const component of group.split('^')) {
      for (const word of component.split(/[\s,]+/)) {
        const folded = foldName(word);
        if (folded !== '') tokens.add(folded);
      }
    }
  }
  return [...tokens];
}
