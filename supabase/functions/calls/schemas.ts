// The request shapes of the `calls` routes. Field names are the dashboard's (snake_case).
import { z } from 'zod';

export const CALL_SID = /^CA[0-9a-f]{32}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const callSid = z.string().regex(CALL_SID, 'must be a Twilio CallSid: CA followed by 32 lowercase hex digits');
const httpUrl = z.string().max(2048).refine((value) => {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && /^https?:\/\//i.test(value);
  } catch {
    return false;
  }
}, 'must be an http(s) URL');
/** The CallSid may come as call_sid (backend) or call_id (dashboard): at least one, and not two different ones. */
function requireOneCallSid(body: { call_id?: string; call_sid?: string }, ctx: z.RefinementCtx): void {
  if (!body.call_id && !body.call_sid) {
    ctx.addIssue({ code: 'custom', path: ['call_sid'], message: 'is required (call_sid or call_id)' });
  } else if (body.call_id && body.call_sid && body.call_id !== body.call_sid) {
    ctx.addIssue({ code: 'custom', path: ['call_id'], message: 'differs from call_sid; send one of them' });
  }
}
const text = (max: number) => z.string().max(max).nullable().optional();
const retryCount = z.number().int().min(0).max(1000).optional();

/** POST /calls/save — the dashboard's save body; `call_id` is the dashboard's name for the CallSid. */
export const saveBody = z.strictObject({
  call_id: callSid.optional(),
  call_sid: callSid.optional(),
  restaurant_id: z.string().max(64).nullable().optional(),
  call_date: z.iso.datetime({ offset: true }).optional(),
  customer_name: text(500),
  phone_number: text(100),
  delivery_address: text(2000),
  order_items: z.array(z.unknown()).max(1000).nullable().optional(),
  special_instructions: text(5000),
  payment_method: text(100),
  delivery_time: text(200),
  total_price: z.union([z.string().max(100), z.number().finite().transform(String)]).nullable().optional(),
  call_duration: z.number().int().min(0).max(10_000_000).nullable().optional(),
  transcript: z.array(z.unknown()).max(10_000).nullable().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  // '' is the old dashboard's "no audio yet", like null: it never clears a link.
  audio_url: z.union([httpUrl, z.literal('').transform(() => null)]).nullable().optional(),
  update_audio_only: z.boolean().optional(),
  retry_count: retryCount,
}).superRefine((body, ctx) => {
  requireOneCallSid(body, ctx);
  if (body.update_audio_only && !body.audio_url) {
    ctx.addIssue({ code: 'custom', path: ['audio_url'], message: 'is required with update_audio_only' });
  }
});
export type SaveBody = z.infer<typeof saveBody>;

/** POST /calls/update-audio — the backend's body. */
export const updateAudioBody = z.strictObject({
  call_sid: callSid.optional(),
  call_id: callSid.optional(),
  audio_url: httpUrl,
  retry_count: retryCount,
}).superRefine(requireOneCallSid);

/** GET /calls/details/{id} */
export const detailsParams = z.strictObject({
  id: z.string().refine((id) => CALL_SID.test(id) || UUID.test(id), 'must be a call id (uuid) or a CallSid'),
});

const intParam = (min: number, max: number) =>
  z.string().regex(/^\d{1,9}$/, 'must be a whole number').transform(Number).pipe(z.number().min(min).max(max));
const searchParam = z.string().max(200).transform((s) => s.trim()).transform((s) => (s === '' ? undefined : s));

/** GET /calls/list — the dashboard's parameters. */
export const listQuery = z.strictObject({
  backend: z.string().max(64).optional().transform((s) => (s ? s : undefined)),
  search: searchParam.optional(),
  limit: intParam(1, 1000).optional(),
  offset: intParam(0, 1_000_000).optional(),
});

/** GET /calls — history with filters and a keyset cursor. */
export const historyQuery = z.strictObject({
  restaurant: z.string().max(64).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  has_audio: z.enum(['true', 'false']).transform((v) => v === 'true').optional(),
  search: searchParam.optional(),
  limit: intParam(1, 1000).optional(),
  cursor: z.string().max(200).optional(),
});
