// The test's own reading of the recording-name rules (shared/DESIGN.md, "Recording names we
// recognise") and of the URL supabase-js builds. Written from the design, not from our SQL, so the
// property and fault tests compute their expectations independently of the code under test.

export const API_URL = 'http://127.0.0.1:54321';
export const BUCKET = 'call-recordings';

export interface ParsedName {
  callSid: string;
  recordingSid: string | null;
  restaurant: string | null;
  /** YYYY-MM-DD */
  date: string | null;
}

const EXT = '(?:[mM][pP]3|[wW][aA][vV])';
const DATED = new RegExp(
  `^call-recordings/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})/([0-9]{4})-([0-9]{2})-([0-9]{2})/(CA[0-9a-f]{32})(?:_(RE[0-9a-f]{32}))?\\.${EXT}$`,
);
const PLAIN = new RegExp(`^(?:[^]*/)?(CA[0-9a-f]{32})_(RE[0-9a-f]{32})\\.${EXT}$`);

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** What a name in a watched bucket says about its recording; null when it is not a recording. */
export function parseRecordingName(name: string): ParsedName | null {
  const dated = DATED.exec(name);
  if (dated) {
    const [y, m, d] = [Number(dated[2]), Number(dated[3]), Number(dated[4])];
    if (y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= daysInMonth(y, m)) {
      return { callSid: dated[5], recordingSid: dated[6] ?? null, restaurant: dated[1], date: `${dated[2]}-${dated[3]}-${dated[4]}` };
    }
  }
  const plain = PLAIN.exec(name);
  if (plain) return { callSid: plain[1], recordingSid: plain[2], restaurant: null, date: null };
  return null;
}

/** The URL of an object as supabase-js builds it (encodeURI of the whole URL). */
export function storageUrl(bucket: string, name: string, options: { public?: boolean; api?: string } = {}): string {
  return encodeURI(`${options.api ?? API_URL}/storage/v1/object/${options.public ? 'public' : 'authenticated'}/${bucket}/${name}`);
}
