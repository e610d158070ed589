/**
 * Value checks for the VRs of indexed attributes (PS3.5 §6.2). A value failing them is not
 * indexed: the store fails in v1 and warns in v2, as the Azure DICOM service does.
 */
const MAX_LENGTH: Record<string, number> = { AE: 16, AS: 4, CS: 16, DA: 8, DS: 16, IS: 12, LO: 64, SH: 16, UI: 64 };

function isValidDate(value: string): boolean {
  const match = /^(\d{4})(\d{2})(\d{2})$/.exec(value);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

const TIME = /^([01]\d|2[0-3])([0-5]\d([0-5]\d|60)?)?(\.\d{1,6})?$/;

/** Why a single value is invalid for its VR, or undefined when it is valid. */
export function vrProblem(vr: string, value: string): string | undefined {
  const limit = MAX_LENGTH[vr];
  if (limit !== undefined && value.length > limit) return `is longer than ${limit} characters`;
  switch (vr) {
    case 'DA':
      return isValidDate(value) ? undefined : 'is not a valid date (YYYYMMDD)';
    case 'TM':
      return value.length <= 14 && TIME.test(value) ? undefined : 'is not a valid time (HHMMSS.FFFFFF)';
    case 'CS':
      return /^[A-Z0-9 _]*$/.test(value) ? undefined : 'has characters a code string may not contain';
    case 'IS':
      return /^ *[+-]?\d+ *$/.test(value) ? undefined : 'is not an integer string';
    case 'PN': {
      const groups = value.split('=');
      if (groups.length > 3) return 'has more than three component groups';
      if (groups.some((group) => group.length > 64)) return 'has a component group longer than 64 characters';
      if (groups.some((group) => group.split('^').length > 5)) return 'has more than five components';
      return undefined;
    }
    default:
      return /[\\]/.test(value) && vr !== 'CS' ? 'has more than one value' : undefined;
  }
}
