// HTTP plumbing shared by our functions: one error type, one JSON shape, CORS on every response.

export const corsHeaders: Record<string, string> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': 'authorization, x-client-info, apikey, content-type',
  'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
  'Access-Control-Max-Age': '86400',
};

export const MAX_BODY_BYTES = 64 * 1024;

/** A client-facing failure: status, a stable machine code, a sentence, optional details. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    /** Extra top-level fields of the body, e.g. { retry: true, retry_after: 2000 }. */
    readonly extra?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...corsHeaders, 'Content-Type': 'application/json; charset=utf-8', ...headers },
  });
}

export function errorResponse(error: HttpError): Response {
  const body: Record<string, unknown> = {
    success: false,
    error: { code: error.code, message: error.message, ...(error.details === undefined ? {} : { details: error.details }) },
    ...error.extra,
  };
  return json(body, error.status, error.headers);
}

export function preflight(): Response {
  return new Response(null, { status: 204, headers: corsHeaders });
}

/** Reads a JSON object body: 415 unless JSON, 413 over the limit, 400 when malformed. */
export async function readJson(req: Request): Promise<unknown> {
  const type = (req.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json' && !type.endsWith('+json')) {
    throw new HttpError(415, 'unsupported_media_type', 'Send the body as JSON with Content-Type: application/json.');
  }
  const declared = Number(req.headers.get('content-length') ?? '0');
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  if (!req.body) throw new HttpError(400, 'invalid_json', 'The request body is empty; send a JSON object.');
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, 'invalid_json', 'The request body is not valid UTF-8.');
  }
  if (text.trim() === '') throw new HttpError(400, 'invalid_json', 'The request body is empty; send a JSON object.');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, 'invalid_json', `The request body is not valid JSON: ${(error as Error).message}`);
  }
  checkStorable(value);
  return value;
}

export const MAX_JSON_DEPTH = 32;

/**
 * Postgres cannot store U+0000 in text or jsonb, and very deep nesting exhausts JSON
 * serialisers: both are the client's doing, so they are a 400 here rather than a failure later.
 */
function checkStorable(root: unknown): void {
  const stack: [unknown, string, number][] = [[root, '', 0]];
  while (stack.length > 0) {
    const [value, path, depth] = stack.pop()!;
    const field = path || '(body)';
    if (typeof value === 'string') {
      if (value.includes('\u0000')) throw unstorable(field, 'contains a NUL character (\\u0000)');
    } else if (value !== null && typeof value === 'object') {
      if (depth >= MAX_JSON_DEPTH) throw unstorable(field, `nests deeper than ${MAX_JSON_DEPTH} levels`);
      for (const [key, child] of Object.entries(value)) {
        if (key.includes('\u0000')) throw unstorable(field, 'has a key with a NUL character (\\u0000)');
        stack.push([child, path ? `${path}.${key}` : key, depth + 1]);
      }
    }
  }
}

function unstorable(field: string, message: string): HttpError {
  return new HttpError(400, 'invalid_request', `Invalid body: ${field}: ${message}`, [{ field, message }]);
}

function tooLarge(): HttpError {
  return new HttpError(413, 'payload_too_large', `The request body is larger than ${MAX_BODY_BYTES} bytes.`);
}
