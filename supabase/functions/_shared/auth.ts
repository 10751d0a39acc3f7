// Who is calling: the secret API key or a legacy service_role JWT -> service_role; a user session
// JWT (verified against the project's JWKS, the legacy HS256 secret included) -> authenticated
// with its claims. Anything else is 401. `verify_jwt = false` for our functions because API
// keys are not JWTs, so every request is checked here.
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, importJWK, jwtVerify, type JWK, type JWTPayload } from 'jose';
import { HttpError } from './http.ts';

export interface Identity {
  role: 'service_role' | 'authenticated';
  claims: Record<string, unknown>;
}

export interface AuthConfig {
  /** SUPABASE_SECRET_KEYS: JSON object of name -> sb_secret_… key. */
  secretKeys: string[];
  /** SUPABASE_JWKS (inline) — or, when absent, fetched from `${supabaseUrl}/auth/v1/.well-known/jwks.json`. */
  jwks?: { keys: JWK[] };
  supabaseUrl?: string;
}

export type Authenticate = (req: Request) => Promise<Identity>;

const SERVICE: Identity = { role: 'service_role', claims: { role: 'service_role' } };

function unauthorized(message: string): HttpError {
  return new HttpError(401, 'unauthorized', message, undefined, undefined, { 'WWW-Authenticate': 'Bearer' });
}

function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

const encoder = new TextEncoder();

/** Constant-time comparison of `candidate` with every configured secret key (lengths are public). */
function isSecretKey(candidate: string, keys: Uint8Array[]): boolean {
  const probe = encoder.encode(candidate);
  let match = false;
  for (const key of keys) {
    if (key.length !== probe.length) continue;
    let diff = 0;
    for (let i = 0; i < key.length; i++) diff |= key[i] ^ probe[i];
    match = match || diff === 0;
  }
  return match;
}

export function createAuthenticator(config: AuthConfig): Authenticate {
  const secretKeys = config.secretKeys.filter(Boolean).map((key) => encoder.encode(key));
  const symmetric = (config.jwks?.keys ?? []).filter((k) => k.kty === 'oct');
  const asymmetric = config.jwks
    ? createLocalJWKSet({ keys: config.jwks.keys.filter((k) => k.kty !== 'oct') })
    : config.supabaseUrl
      ? createRemoteJWKSet(new URL('/auth/v1/.well-known/jwks.json', config.supabaseUrl))
      : null;

  async function verify(token: string): Promise<JWTPayload> {
    let header;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw unauthorized('The bearer token is not a valid JWT.');
    }
    try {
      if (header.alg?.startsWith('HS')) {
        const candidates = symmetric.filter((k) => !header.kid || !k.kid || k.kid === header.kid);
        for (const jwk of candidates) {
          try {
            return (await jwtVerify(token, await importJWK({ ...jwk, alg: header.alg }, header.alg), { algorithms: [header.alg] })).payload;
          } catch (error) {
            if ((error as { code?: string }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw error;
          }
        }
        throw unauthorized('The JWT signature is invalid.');
      }
      if (!asymmetric) throw unauthorized('No key is configured to verify this JWT.');
      return (await jwtVerify(token, asymmetric, { algorithms: ['ES256', 'RS256', 'EdDSA'] })).payload;
    } catch (error) {
      if (error instanceof HttpError) throw error;
      const code = (error as { code?: string }).code;
      if (code === 'ERR_JWT_EXPIRED') throw unauthorized('The JWT has expired.');
      throw unauthorized('The JWT could not be verified.');
    }
  }

  return async (req: Request): Promise<Identity> => {
    const authorization = req.headers.get('authorization') ?? '';
    const bearer = /^Bearer\s+(\S+)$/i.exec(authorization)?.[1] ?? '';
    const apikey = req.headers.get('apikey') ?? '';
    for (const token of [bearer, apikey]) {
      if (token.startsWith('sb_secret_') && isSecretKey(token, secretKeys)) return SERVICE;
    }
    // A JWT in Authorization (a user session or a legacy key), else a legacy key in apikey.
    for (const token of [bearer, apikey]) {
      if (!looksLikeJwt(token)) continue;
      const claims = await verify(token);
      if (claims.role === 'service_role') return SERVICE;
      if (claims.role === 'authenticated' && typeof claims.sub === 'string') {
        return { role: 'authenticated', claims: claims as Record<string, unknown> };
      }
    }
    if (bearer.startsWith('sb_secret_') || apikey.startsWith('sb_secret_')) {
      throw unauthorized('The secret API key is not valid for this project.');
    }
    throw unauthorized('Sign in, or call with the secret API key (apikey header).');
  };
}

/** Reads the auth settings from the environment `supabase functions serve` / the platform injects. */
export function authConfigFromEnv(env: { get(name: string): string | undefined }): AuthConfig {
  const secretKeys: string[] = [];
  const keys = env.get('SUPABASE_SECRET_KEYS');
  if (keys) {
    try {
      secretKeys.push(...Object.values(JSON.parse(keys) as Record<string, string>));
    } catch {
      throw new Error('SUPABASE_SECRET_KEYS is not a JSON object');
    }
  }
  const jwks = env.get('SUPABASE_JWKS');
  return {
    secretKeys,
    jwks: jwks ? (JSON.parse(jwks) as { keys: JWK[] }) : undefined,
    supabaseUrl: env.get('SUPABASE_URL'),
  };
}
