// A failure inside linking, seen through HTTP: the Storage write commits, the failure is kept in
// call_recordings.link_errors, GET /calls/details shows the old state until the errors are
// replayed, and shows the right one after.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callSid, recordingSid, useTestDatabase } from '../support/db.ts';
import { inProcessClient, makeCredentials, type Client } from '../support/http.ts';
import { BUCKET, storageUrl } from '../support/recordings.ts';

const db = useTestDatabase();
let client: Client;
let service: Record<string, string>;

beforeAll(async () => {
  const creds = await makeCredentials();
  client = inProcessClient(db, creds);
  service = creds.secretKey;
});
afterAll(async () => {
  await client.database.end();
});

const details = async (sid: string) => {
  const res = await client.request('GET', `/calls/details/${sid}`, { headers: service });
  expect(res.status).toBe(200);
  return res.body.call as { audio_url: string | null; recordings: { object_name: string }[] };
};

/** Makes every write to public.recordings fail, as a broken index, a full disk or a bad deploy would. */
async function breakLinking() {
  await db.admin`create function public.fail_linking() returns trigger language plpgsql as $$
                 begin raise exception 'linking is broken' using errcode = 'XX000'; end $$`;
  await db.admin`create trigger fail_linking before insert or update or delete on public.recordings
                 for each row execute function public.fail_linking()`;
}
async function repairLinking() {
  await db.admin`drop trigger if exists fail_linking on public.recordings`;
  await db.admin`drop function if exists public.fail_linking()`;
}

describe('a failure inside linking', () => {
  it('lets uploads and deletes commit, shows the old audio until replay, then the right one', async () => {
    const fresh = callSid();
    const linked = callSid();
    const freshName = `${fresh}_${recordingSid()}.mp3`;
    const linkedName = `twilio/${linked}_${recordingSid()}.mp3`;
    for (const sid of [fresh, linked]) {
      expect((await client.request('POST', '/calls/save', { headers: service, body: { call_sid: sid } })).status).toBe(200);
    }
    await db.storage.upload(BUCKET, linkedName);
    expect((await details(linked)).audio_url).toBe(storageUrl(BUCKET, linkedName));

    await breakLinking();
    try {
      // Storage never fails because of us: the upload and the delete commit.
      const object = await db.storage.upload(BUCKET, freshName);
      await db.storage.remove(BUCKET, [linkedName]);
      const objects = await db.admin`select id, name from storage.objects where name in (${freshName}, ${linkedName})`;
      expect(objects).toEqual([{ id: object.id, name: freshName }]);

      const errors = await db.admin`
        select operation, object_name, sqlstate, message, resolved_at from call_recordings.link_errors order by id`;
      expect(errors).toEqual([
        { operation: 'INSERT', object_name: freshName, sqlstate: 'XX000', message: 'linking is broken', resolved_at: null },
        { operation: 'DELETE', object_name: null, sqlstate: 'XX000', message: 'linking is broken', resolved_at: null },
      ]);

      // What a client sees meanwhile: no audio for the new upload, the deleted one still linked.
      expect(await details(fresh)).toMatchObject({ audio_url: null, recordings: [] });
      expect(await details(linked)).toMatchObject({ audio_url: storageUrl(BUCKET, linkedName), recordings: [{ object_name: linkedName }] });
    } finally {
      await repairLinking();
    }

    const [replayed] = await db.owner`select * from call_recordings.replay_link_errors()`;
    expect(replayed).toMatchObject({ recordings_written: '1', recordings_removed: '1' });
    expect(await details(fresh)).toMatchObject({ audio_url: storageUrl(BUCKET, freshName), recordings: [{ object_name: freshName }] });
    expect(await details(linked)).toMatchObject({ audio_url: null, recordings: [] });
    expect(await db.admin`select id from call_recordings.link_errors where resolved_at is null`).toHaveLength(0);
  });
});
