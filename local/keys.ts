// The Supabase CLI's local credentials (shared/PLATFORM.md, "Local CLI defaults"), and the
// environment `supabase functions serve` injects into a function. `npm start` and the tests use
// these so that clients written for `supabase start` work unchanged.
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';

export const API_PORT = 54321;
export const DB_PORT = 54322;
export const API_URL = `http://127.0.0.1:${API_PORT}`;
export const JWT_SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';
export const PUBLISHABLE_KEY = 'sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH';
export const SECRET_KEY = 'sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz';
/** exp of the CLI's demo anon / service_role JWTs. */
export const LEGACY_KEY_EXP = 1983812996;

const hs256 = new TextEncoder().encode(JWT_SECRET);

/** The CLI's legacy anon / service_role keys: HS256 JWTs signed with the local JWT secret. */
export async function legacyKey(role: 'anon' | 'service_role'): Promise<string> {
  return await new SignJWT({ iss: 'supabase-demo', role, exp: LEGACY_KEY_EXP })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(hs256);
}

export interface SigningKey {
  privateJwk: JWK;
  publicJwk: JWK;
}

/** A new ES256 key for user sessions (the CLI signs sessions with ES256). */
export async function newSigningKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = crypto.randomUUID();
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig', key_ops: ['sign'] };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig', key_ops: ['verify'] };
  return { privateJwk, publicJwk };
}

/** The JWKS a function sees: the session key, plus the legacy HS256 secret as an `oct` key. */
export function jwks(signing: SigningKey): { keys: JWK[] } {
  return {
    keys: [
      signing.publicJwk,
      { kty: 'oct', k: Buffer.from(JWT_SECRET).toString('base64url'), alg: 'HS256', kid: 'legacy-hs256' },
    ],
  };
}

/** The environment `supabase functions serve` injects, pointed at `dbUrl`. */
export async function functionEnv(options: { dbUrl: string; signing: SigningKey; apiUrl?: string }): Promise<Record<string, string>> {
  return {
    SUPABASE_URL: options.apiUrl ?? API_URL,
    SUPABASE_DB_URL: options.dbUrl,
    SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: PUBLISHABLE_KEY }),
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRET_KEY }),
    SUPABASE_JWKS: JSON.stringify(jwks(options.signing)),
    SUPABASE_ANON_KEY: await legacyKey('anon'),
    SUPABASE_SERVICE_ROLE_KEY: await legacyKey('service_role'),
  };
}
