// The function writes values into SQL as literals (one round trip per request, see
// _shared/db.ts). Every value must come back from Postgres exactly as it went in.
import { describe, expect, it } from 'vitest';
import { literal, sql } from '../../supabase/functions/_shared/db.ts';
import { HttpError } from '../../supabase/functions/_shared/http.ts';
import { useTestDatabase } from '../support/db.ts';

const db = useTestDatabase();

const nasty = [
  "'; drop table public.calls; --",
  "\\'; select 1; --",
  'back\\slash \\\\ and \\n not a newline',
  "O'Brien's \"pizza\"",
  '$$ dollar $q$ quotes $$',
  'E\'\\x41\'',
  'ünïcødé 中文 🍕 \u2028',
  '',
  ' '.repeat(3) + '\t\r\n',
];

describe('sql literals', () => {
  it.each([true, false])('round-trips hostile strings with standard_conforming_strings = %s', async (conforming) => {
    for (const value of nasty) {
      const statement = sql`select ${value}::text as v, ${value} = ${value} as same`;
      const [row] = await db.owner.begin(async (tx) => {
        await tx.unsafe(`set local standard_conforming_strings = ${conforming ? 'on' : 'off'}`);
        return await tx.unsafe(statement.text);
      });
      expect(row).toEqual({ v: value, same: true });
    }
  });

  it('round-trips JSON, numbers, booleans and null', async () => {
    const document = { text: nasty, nested: { n: -1.5, ok: true, none: null } };
    const [row] = await db.owner.unsafe(sql`select ${{ json: document }} as j, ${-42}::int as n, ${true} as b, ${null}::text as z`.text);
    expect(row).toEqual({ j: document, n: -42, b: true, z: null });
  });

  it('refuses NUL characters and non-finite numbers instead of writing them', () => {
    expect(() => literal('a\u0000b')).toThrow(HttpError);
    expect(() => literal(Number.NaN)).toThrow(TypeError);
    expect(() => literal(Number.POSITIVE_INFINITY)).toThrow(TypeError);
  });
});
