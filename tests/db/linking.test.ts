// Recordings link themselves to calls: every order, every Storage operation, as Storage writes them.
import { describe, expect, it } from 'vitest';
import { callSid, recordingSid, SERVICE_ROLE, useTestDatabase } from '../support/db.ts';
import { writeObject, setRequestContext } from '../../local/storage-writes.ts';

const db = useTestDatabase();
const BUCKET = 'call-recordings';
const API = 'http://127.0.0.1:54321';

function privateUrl(bucket: string, name: string) {
  return encodeURI(`${API}/storage/v1/object/authenticated/${bucket}/${name}`);
}
function publicUrl(bucket: string, name: string) {
  return encodeURI(`${API}/storage/v1/object/public/${bucket}/${name}`);
}

async function save(call: Record<string, unknown>) {
  return await db.as(SERVICE_ROLE, async (tx) => {
    const [row] = await tx`select (public.save_call(${tx.json(call as never)})).*`;
    return row;
  });
}
async function callRow(sid: string) {
  const [row] = await db.admin`select * from public.calls where call_sid = ${sid}`;
  return row;
}
async function audioUrl(sid: string): Promise<string | null> {
  return (await callRow(sid))?.audio_url ?? null;
}
async function recordingsOf(sid: string) {
  return await db.admin`select * from public.recordings where call_sid = ${sid} order by write_seq desc`;
}
async function linkErrors() {
  return await db.admin`select * from call_recordings.link_errors order by id`;
}

describe('recognised names', () => {
  it('links <CallSid>_<RecordingSid>.mp3 at the bucket root', async () => {
    const sid = callSid();
    const name = `${sid}_${recordingSid()}.mp3`;
    await save({ call_sid: sid });
    await db.storage.upload(BUCKET, name, { size: 1234, mimetype: 'audio/mpeg' });
    expect(await audioUrl(sid)).toBe(privateUrl(BUCKET, name));
    const [rec] = await recordingsOf(sid);
    expect(rec).toMatchObject({ bucket_id: BUCKET, object_name: name, size_bytes: '1234', mime_type: 'audio/mpeg' });
    expect(rec.recording_sid).toBe(name.slice(35, 69));
  });

  it('links <CallSid>_<RecordingSid>.wav under folders, extension in any case', async () => {
    const sid = callSid();
    const name = `twilio/2026/${sid}_${recordingSid()}.WAV`;
    await save({ call_sid: sid });
    await db.storage.upload(BUCKET, name);
    expect(await audioUrl(sid)).toBe(privateUrl(BUCKET, name));
  });

  it('captures restaurant and date from call-recordings/<restaurant>/<date>/<CallSid>.mp3 and fills the call', async () => {
    await db.admin`insert into public.restaurants (id, name) values ('pizza-9', 'Pizza 9') on conflict do nothing`;
    const sid = callSid();
    const name = `call-recordings/pizza-9/2026-01-15/${sid}.mp3`;
    await save({ call_sid: sid });
    await db.storage.upload(BUCKET, name);
    const [rec] = await recordingsOf(sid);
    expect(rec.restaurant_id).toBe('pizza-9');
    expect(rec.recorded_on.toISOString().slice(0, 10)).toBe('2026-01-15');
    expect(rec.recording_sid).toBeNull();
    const call = await callRow(sid);
    expect(call.audio_url).toBe(privateUrl(BUCKET, name));
    expect(call.restaurant_id).toBe('pizza-9');
  });

  it('does not invent a restaurant that does not exist', async () => {
    const sid = callSid();
    await save({ call_sid: sid });
    await db.storage.upload(BUCKET, `call-recordings/nowhere/2026-01-15/${sid}.mp3`);
    const call = await callRow(sid);
    expect(call.audio_url).not.toBeNull();
    expect(call.restaurant_id).toBeNull();
  });

  it('builds getPublicUrl() URLs for a public bucket, percent-encoded like encodeURI', async () => {
    await db.owner`insert into storage.buckets (id, name, public) values ('public-recs', 'public-recs', true)`;
    await db.owner`select * from call_recordings.watch_bucket('public-recs')`;
    const sid = callSid();
    const name = `Café Über/${sid}_${recordingSid()}.mp3`;
    await save({ call_sid: sid });
    await db.storage.upload('public-recs', name);
    expect(await audioUrl(sid)).toBe(publicUrl('public-recs', name));
    expect(await audioUrl(sid)).toContain('Caf%C3%A9%20%C3%9Cber/');
  });

  it('uses the configured API URL', async () => {
    await db.owner`update call_recordings.settings set api_url = 'https://abcd.supabase.co'`;
    try {
      const sid = callSid();
      const name = `${sid}_${recordingSid()}.mp3`;
      await db.storage.upload(BUCKET, name);
      await save({ call_sid: sid });
      expect(await audioUrl(sid)).toBe(`https://abcd.supabase.co/storage/v1/object/authenticated/${BUCKET}/${name}`);
    } finally {
      await db.owner`update call_recordings.settings set api_url = ${API}`;
    }
  });

  it.each([
    ['a name that is not a recording', (sid: string) => `${sid}.mp3`],
    ['an unknown extension', (sid: string) => `${sid}_${recordingSid()}.ogg`],
    ['an uppercase CallSid', (sid: string) => `${sid.toUpperCase()}_${recordingSid()}.mp3`],
    ['an impossible date', (sid: string) => `call-recordings/demo/2026-02-30/${sid}.mp3`],
    ['a dated path not at the root', (sid: string) => `x/call-recordings/demo/2026-02-03/${sid}.mp3`],
  ])('ignores %s silently', async (_label, nameFor) => {
    const sid = callSid();
    await save({ call_sid: sid });
    const before = (await linkErrors()).length;
    await db.storage.upload(BUCKET, nameFor(sid));
    expect(await audioUrl(sid)).toBeNull();
    expect(await recordingsOf(sid)).toHaveLength(0);
    expect(await linkErrors()).toHaveLength(before);
  });

  it('never touches buckets it does not watch', async () => {
    await db.owner`insert into storage.buckets (id, name) values ('avatars', 'avatars') on conflict do nothing`;
    const sid = callSid();
    const name = `${sid}_${recordingSid()}.mp3`;
    await save({ call_sid: sid });
    await db.storage.upload('avatars', name);
    await db.storage.upload('avatars', name, { upsert: true });
    await db.storage.move('avatars', name, `x/${name}`);
    await db.storage.remove('avatars', [`x/${name}`]);
    expect(await audioUrl(sid)).toBeNull();
    expect(await recordingsOf(sid)).toHaveLength(0);
  });
});

describe('order independence', () => {
  it('links a recording uploaded before its call is saved', async () => {
    const sid = callSid();
    const name = `${sid}_${recordingSid()}.mp3`;
    await db.storage.upload(BUCKET, name);
    expect(await callRow(sid)).toBeUndefined();
    const saved = await save({ call_sid: sid, customer_name: 'Ada' });
    expect(saved.audio_url).toBe(privateUrl(BUCKET, name));
  });

  it('links a recording uploaded after its call is saved', async () => {
    const sid = callSid();
    const saved = await save({ call_sid: sid });
    expect(saved.audio_url).toBeNull();
    const name = `${sid}_${recordingSid()}.mp3`;
    await db.storage.upload(BUCKET, name);
    expect(await audioUrl(sid)).toBe(privateUrl(BUCKET, name));
  });

  it('links when the upload and the save share one transaction, in either order', async () => {
    for (const uploadFirst of [true, false]) {
      const sid = callSid();
      const name = `${sid}_${recordingSid()}.mp3`;
      await db.owner.begin(async (tx) => {
        await setRequestContext(tx, SERVICE_ROLE);
        if (uploadFirst) await writeObject(tx, BUCKET, name);
        await tx`select public.save_call(${tx.json({ call_sid: sid })})`;
        if (!uploadFirst) await writeObject(tx, BUCKET, name);
      });
      expect(await audioUrl(sid)).toBe(privateUrl(BUCKET, name));
    }
  });

  it('links every call when saves and uploads race on separate connections', async () => {
    const sids = Array.from({ length: 100 }, () => callSid());
    await Promise.all(
      sids.flatMap((sid, i) => {
        const upload = db.storage.upload(BUCKET, `${sid}_${recordingSid()}.mp3`);
        const saving = save({ call_sid: sid });
        return i % 2 ? [upload, saving] : [saving, upload];
      }),
    );
    const rows = await db.admin`
      select c.call_sid, c.audio_url, r.url from public.calls c join public.recordings r using (call_sid)
      where c.call_sid = any(${sids})`;
    expect(rows).toHaveLength(sids.length);
    for (const row of rows) expect(row.audio_url).toBe(row.url);
  });
  it('does not deadlock when an audio URL is set while the same call\'s recording is being linked', async () => {
    const sid = callSid();
    const name = `${sid}_${recordingSid()}.mp3`;
    await save({ call_sid: sid });
    let release!: () => void;
    let locked!: () => void;
    const released = new Promise<void>((resolve) => { release = resolve; });
    const holding = new Promise<void>((resolve) => { locked = resolve; });
    // The linker holds the call's lock; meanwhile update-audio takes the call's row lock.
    const upload = db.admin.begin(async (tx) => {
      await tx`select call_recordings.lock_call(${sid})`;
      locked();
      await released;
      await setRequestContext(tx, SERVICE_ROLE);
      await writeObject(tx, BUCKET, name);
    });
    await holding;
    const update = db.as(SERVICE_ROLE, (tx) => tx`select public.update_call_audio(${sid}, 'https://cdn.example.com/e.mp3')`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    release();
    await Promise.all([upload, update]);
    const call = await callRow(sid);
    expect(call.audio_url).toBe(privateUrl(BUCKET, name));
    expect(call.explicit_audio_url).toBe('https://cdn.example.com/e.mp3');
    expect(await linkErrors()).toEqual([]);
  });
});

describe('overwrite, move, delete', () => {
  it('keeps the link when a recording is overwritten (same recording, new version)', async () => {
    const sid = callSid();
    const name = `${sid}_${recordingSid()}.mp3`;
    await save({ call_sid: sid });
    await db.storage.upload(BUCKET, name, { size: 100 });
    const [before] = await recordingsOf(sid);
    await db.storage.upload(BUCKET, name, { upsert: true, size: 200 });
    const after = await recordingsOf(sid);
    expect(after).toHaveLength(1);
    expect(after[0].object_id).toBe(before.object_id);
    expect(after[0].size_bytes).toBe('200');
    expect(after[0].object_version).not.toBe(before.object_version);
    expect(await audioUrl(sid)).toBe(privateUrl(BUCKET, name));
  });

  it('refuses an upload over an existing name without upsert and changes nothing', async () => {
    const sid = callSid();
    const name = `${sid}_${recordingSid()}.mp3`;
    await db.storage.upload(BUCKET, name, { size: 100 });
    await expect(db.storage.upload(BUCKET, name, { size: 999 })).rejects.toThrow(/already exists/);
    const [rec] = await recordingsOf(sid);
    expect(rec.size_bytes).toBe('100');
  });

  it('makes an overwritten older recording the current one again', async () => {
    const sid = callSid();
    const first = `${sid}_${recordingSid()}.mp3`;
    const second = `${sid}_${recordingSid()}.mp3`;
    await save({ call_sid: sid });
    await db.storage.upload(BUCKET, first);
    await db.storage.upload(BUCKET, second);
    expect(await audioUrl(sid)).toBe(privateUrl(BUCKET, second));
    await db.storage.upload(BUCKET, first, { upsert: true });
    expect(await audioUrl(sid)).toBe(privateUrl(BUCKET, first));
  });

  it('follows a recording that is moved, and re-links it when moved to another call', async () => {
    const a = callSid();
    const b = callSid();
    const rec = recordingSid();
    await save({ call_sid: a });
    await save({ call_sid: b });
    await db.storage.upload(BUCKET, `${a}_${rec}.mp3`);
    await db.storage.move(BUCKET, `${a}_${rec}.mp3`, `archive/${a}_${rec}.mp3`);
    expect(await audioUrl(a)).toBe(privateUrl(BUCKET, `archive/${a}_${rec}.mp3`));
    await db.storage.move(BUCKET, `archive/${a}_${rec}.mp3`, `${b}_${rec}.mp3`);
    expect(await audioUrl(a)).toBeNull();
    expect(await audioUrl(b)).toBe(privateUrl(BUCKET, `${b}_${rec}.mp3`));
    expect(await recordingsOf(a)).toHaveLength(0);
    expect(await recordingsOf(b)).toHaveLength(1);
  });

  it('unlinks a recording moved out of the watched bucket or to a name that is not a recording', async () => {
    await db.owner`insert into storage.buckets (id, name) values ('elsewhere', 'elsewhere') on conflict do nothing`;
    for (const [toBucket, toName] of [['elsewhere', undefined], [BUCKET, 'notes.txt']] as const) {
      const sid = callSid();
      const name = `${sid}_${recordingSid()}.mp3`;
      await save({ call_sid: sid });
      await db.storage.upload(BUCKET, name);
      await db.storage.move(BUCKET, name, toName ?? name, { toBucket });
      expect(await audioUrl(sid)).toBeNull();
      expect(await recordingsOf(sid)).toHaveLength(0);
    }
  });

  it('links a file renamed into a recording name', async () => {
    const sid = callSid();
    const name = `${sid}_${recordingSid()}.mp3`;
    await save({ call_sid: sid });
    await db.storage.upload(BUCKET, 'incoming/upload.tmp');
    await db.storage.move(BUCKET, 'incoming/upload.tmp', name);
    expect(await audioUrl(sid)).toBe(privateUrl(BUCKET, name));
  });

  it('makes the newest of two recordings current, and falls back to the older when it is deleted', async () => {
    const sid = callSid();
    const older = `${sid}_${recordingSid()}.mp3`;
    const newer = `${sid}_${recordingSid()}.mp3`;
    await save({ call_sid: sid });
    await db.storage.upload(BUCKET, older);
    await db.storage.upload(BUCKET, newer);
    expect(await audioUrl(sid)).toBe(privateUrl(BUCKET, newer));
    await db.storage.remove(BUCKET, [newer]);
    expect(await audioUrl(sid)).toBe(privateUrl(BUCKET, older));
    await db.storage.remove(BUCKET, [older]);
    expect(await audioUrl(sid)).toBeNull();
    expect(await recordingsOf(sid)).toHaveLength(0);
  });

  it('falls back to the explicit URL when the last recording is deleted', async () => {
    const sid = callSid();
    const name = `${sid}_${recordingSid()}.mp3`;
    await save({ call_sid: sid, audio_url: 'https://cdn.example.com/a.mp3' });
    await db.storage.upload(BUCKET, name);
    expect(await audioUrl(sid)).toBe(privateUrl(BUCKET, name));
    await db.storage.remove(BUCKET, [name]);
    expect(await audioUrl(sid)).toBe('https://cdn.example.com/a.mp3');
  });

  it('still refuses a direct DELETE that does not come through the Storage API', async () => {
    const sid = callSid();
    const name = `${sid}_${recordingSid()}.mp3`;
    await db.storage.upload(BUCKET, name);
    await expect(db.as(SERVICE_ROLE, (tx) => tx`delete from storage.objects where name = ${name}`))
      .rejects.toMatchObject({ code: '42501' });
    expect(await recordingsOf(sid)).toHaveLength(1);
  });
});

describe('containment', () => {
  it('leaves no trace of the rolled-back permission dry run', async () => {
    const sid = callSid();
    await save({ call_sid: sid });
    const seqBefore = (await db.admin`select count(*)::int as n from public.recordings`)[0].n;
    const dryRun = new Error('rollback');
    await expect(db.owner.begin(async (tx) => {
      await setRequestContext(tx, SERVICE_ROLE);
      await writeObject(tx, BUCKET, `${sid}_${recordingSid()}.mp3`);
      const [inside] = await tx`select audio_url from public.calls where call_sid = ${sid}`;
      expect(inside.audio_url).not.toBeNull();
      throw dryRun;
    })).rejects.toBe(dryRun);
    expect(await audioUrl(sid)).toBeNull();
    expect((await db.admin`select count(*)::int as n from public.recordings`)[0].n).toBe(seqBefore);
  });

  it('lets the upload commit and records the failure when linking fails inside', async () => {
    const sid = callSid();
    const name = `${sid}_${recordingSid()}.mp3`;
    await save({ call_sid: sid });
    await db.admin`create function public.fail_linking() returns trigger language plpgsql as $$
                   begin raise exception 'disk on fire' using errcode = 'XX000'; end $$`;
    await db.admin`create trigger fail_linking before insert on public.recordings
                   for each row execute function public.fail_linking()`;
    try {
      const object = await db.storage.upload(BUCKET, name);
      const [stored] = await db.admin`select id from storage.objects where bucket_id = ${BUCKET} and name = ${name}`;
      expect(stored.id).toBe(object.id);
      const errors = await db.admin`select * from call_recordings.link_errors where object_id = ${object.id}`;
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ operation: 'INSERT', bucket_id: BUCKET, object_name: name, sqlstate: 'XX000', message: 'disk on fire' });
      expect(await audioUrl(sid)).toBeNull();
    } finally {
      await db.admin`drop trigger fail_linking on public.recordings`;
      await db.admin`drop function public.fail_linking()`;
    }
    // Once the cause is gone, replaying links what failed.
    const [replayed] = await db.owner`select * from call_recordings.replay_link_errors()`;
    expect(Number(replayed.recordings_written)).toBeGreaterThanOrEqual(1);
    expect(await audioUrl(sid)).toBe(privateUrl(BUCKET, name));
    const open = await db.admin`select * from call_recordings.link_errors where resolved_at is null`;
    expect(open).toHaveLength(0);
  });
});

describe('explicit and parked audio URLs', () => {
  it('parks an audio URL for a call not saved yet and applies it when the call arrives', async () => {
    const sid = callSid();
    const result = await db.as(SERVICE_ROLE, (tx) =>
      tx`select public.update_call_audio(${sid}, 'https://cdn.example.com/x.mp3') as call`);
    expect(result[0].call).toBeNull();
    const [parked] = await db.admin`select audio_url from call_recordings.pending_audio where call_sid = ${sid}`;
    expect(parked.audio_url).toBe('https://cdn.example.com/x.mp3');
    const saved = await save({ call_sid: sid, customer_name: 'Grace' });
    expect(saved.audio_url).toBe('https://cdn.example.com/x.mp3');
    expect(await db.admin`select 1 from call_recordings.pending_audio where call_sid = ${sid}`).toHaveLength(0);
  });

  it('never replaces a linked audio_url with null on save', async () => {
    const sid = callSid();
    await save({ call_sid: sid, audio_url: 'https://cdn.example.com/y.mp3', customer_name: 'A' });
    const again = await save({ call_sid: sid, audio_url: null, customer_name: 'B' });
    expect(again.audio_url).toBe('https://cdn.example.com/y.mp3');
    expect(again.customer_name).toBe('B');
  });

  it('prefers a live recording over an explicit URL', async () => {
    const sid = callSid();
    const name = `${sid}_${recordingSid()}.mp3`;
    await db.storage.upload(BUCKET, name);
    const saved = await save({ call_sid: sid, audio_url: 'https://cdn.example.com/z.mp3' });
    expect(saved.audio_url).toBe(privateUrl(BUCKET, name));
    expect(saved.explicit_audio_url).toBe('https://cdn.example.com/z.mp3');
  });
});

describe('backfill', () => {
  it('links objects uploaded before their bucket was watched, and a second run changes nothing', async () => {
    await db.owner`insert into storage.buckets (id, name) values ('legacy', 'legacy')`;
    const sids = [callSid(), callSid(), callSid()];
    const names = sids.map((sid) => `${sid}_${recordingSid()}.mp3`);
    for (const sid of sids.slice(0, 2)) await save({ call_sid: sid });
    for (const name of names) await db.storage.upload('legacy', name);
    // an older and a newer recording of the same call: the newer must win
    const newer = `${sids[0]}_${recordingSid()}.mp3`;
    await db.admin`select pg_sleep(0.01)`;
    await db.storage.upload('legacy', newer);
    await db.storage.upload('legacy', 'readme.txt');
    expect(await audioUrl(sids[0])).toBeNull();

    const [first] = await db.owner`select * from call_recordings.watch_bucket('legacy')`;
    expect(Number(first.recordings_written)).toBe(4);
    expect(Number(first.calls_updated)).toBe(2);
    expect(await audioUrl(sids[0])).toBe(privateUrl('legacy', newer));
    expect(await audioUrl(sids[1])).toBe(privateUrl('legacy', names[1]));
    // the third call arrives later and picks its recording up
    expect((await save({ call_sid: sids[2] })).audio_url).toBe(privateUrl('legacy', names[2]));

    const snapshot = await db.admin`select * from public.recordings where bucket_id = 'legacy' order by object_id`;
    const [second] = await db.owner`select * from call_recordings.backfill()`;
    expect(second).toMatchObject({ recordings_written: '0', recordings_removed: '0', calls_updated: '0' });
    expect(await db.admin`select * from public.recordings where bucket_id = 'legacy' order by object_id`).toEqual(snapshot);
  });

  it('rewrites stored URLs after the API URL changes, and removes recordings of an unwatched bucket', async () => {
    await db.owner`insert into storage.buckets (id, name) values ('moving', 'moving')`;
    await db.owner`select * from call_recordings.watch_bucket('moving')`;
    const sid = callSid();
    const name = `${sid}_${recordingSid()}.mp3`;
    await save({ call_sid: sid });
    await db.storage.upload('moving', name);
    await db.owner`update call_recordings.settings set api_url = 'https://ref.supabase.co'`;
    try {
      await db.owner`select * from call_recordings.backfill('moving')`;
      expect(await audioUrl(sid)).toBe(`https://ref.supabase.co/storage/v1/object/authenticated/moving/${name}`);
    } finally {
      await db.owner`update call_recordings.settings set api_url = ${API}`;
    }
    await db.owner`select * from call_recordings.unwatch_bucket('moving')`;
    expect(await audioUrl(sid)).toBeNull();
    expect(await recordingsOf(sid)).toHaveLength(0);
  });
});

describe('parse_recording_name', () => {
  const sid = 'CA' + 'ab'.repeat(16);
  const rec = 'RE' + '0f'.repeat(16);
  it.each([
    [`${sid}_${rec}.mp3`, { call_sid: sid, recording_sid: rec, restaurant_id: null, recorded_on: null }],
    [`a/b c/${sid}_${rec}.Wav`, { call_sid: sid, recording_sid: rec, restaurant_id: null, recorded_on: null }],
    [`call-recordings/pizza.1/2028-02-29/${sid}.mp3`, { call_sid: sid, recording_sid: null, restaurant_id: 'pizza.1', recorded_on: '2028-02-29' }],
    [`call-recordings/r/2026-12-31/${sid}_${rec}.MP3`, { call_sid: sid, recording_sid: rec, restaurant_id: 'r', recorded_on: '2026-12-31' }],
    [`call-recordings/${'r'.repeat(64)}/2026-01-01/${sid}.wav`, { call_sid: sid, restaurant_id: 'r'.repeat(64) }],
  ])('reads %s', async (name, expected) => {
    const [row] = await db.owner`select call_sid, recording_sid, restaurant_id, to_char(recorded_on, 'YYYY-MM-DD') as recorded_on
                                 from call_recordings.parse_recording_name(${name})`;
    expect(row).toMatchObject(expected);
  });

  it.each([
    `x${sid}_${rec}.mp3`, `${sid}_${rec}.mp3.bak`, `${sid}_${rec}.ogg`, `${sid}${rec}.mp3`, `${sid}_${rec}x.mp3`,
    `${sid.slice(0, -1)}_${rec}.mp3`, `${sid}_${rec.slice(0, -1)}0.mp3`.replace('0.mp3', '.mp3'),
    `call-recordings/r/2027-02-29/${sid}.mp3`, `call-recordings/r/2026-13-01/${sid}.mp3`, `call-recordings/r/2026-1-011/${sid}.mp3`,
    `call-recordings/${'r'.repeat(65)}/2026-01-01/${sid}.mp3`, `call-recordings/-r/2026-01-01/${sid}.mp3`,
    `call-recordings/r/x/2026-01-01/${sid}.mp3`, `call-recordings/r/2026-01-01/${sid}_.mp3`, '', '.mp3',
  ])('ignores %s', async (name) => {
    const [row] = await db.owner`select (call_recordings.parse_recording_name(${name})).call_sid`;
    expect(row.call_sid).toBeNull();
  });
});
