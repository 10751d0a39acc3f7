// Credentials and an in-process client for the `calls` handler, wired like index.ts but with the
// test database and test keys.
import { SignJWT, importJWK } from 'jose';
import { randomUUID } from 'node:crypto';
import type { Database } from '../../supabase/functions/_shared/db.ts';
import { JWT_SECRET, PUBLISHABLE_KEY, SECRET_KEY, legacyKey, newSigningKey, type SigningKey } from '../../local/keys.ts';
import type { TestDatabase } from './db.ts';
import { BASE, rawClient } from './handler.ts';

export { BASE };

export interface Credentials {
  signing: SigningKey;
  /** headers for each persona */
  secretKey: Record<string, string>;
  secretKeyAsBearer: Record<string, string>;
  legacyServiceRole: Record<string, string>;
  anonKey: Record<string, string>;
  publishableKey: Record<string, string>;
  userEs256(userId: string, options?: { expiresIn?: string | number; role?: string }): Promise<Record<string, string>>;
  userHs256(userId: string, options?: { secret?: string; expiresIn?: string | number }): Promise<Record<string, string>>;
}

export async function makeCredentials(): Promise<Credentials> {
  const signing = await newSigningKey();
  const privateKey = await importJWK(signing.privateJwk, 'ES256');
  const anon = await legacyKey('anon');
  const service = await legacyKey('service_role');
  const userClaims = (userId: string, role = 'authenticated') => ({
    sub: userId, role, aud: 'authenticated', email: `${userId.slice(0, 8)}@example.com`, session_id: randomUUID(),
  });
  return {
    signing,
    secretKey: { apikey: SECRET_KEY },
    secretKeyAsBearer: { authorization: `Bearer ${SECRET_KEY}` },
    legacyServiceRole: { apikey: service, authorization: `Bearer ${service}` },
    anonKey: { apikey: anon, authorization: `Bearer ${anon}` },
    publishableKey: { apikey: PUBLISHABLE_KEY },
    async userEs256(userId, options = {}) {
      const token = await new SignJWT(userClaims(userId, options.role))
        .setProtectedHeader({ alg: 'ES256', kid: signing.privateJwk.kid, typ: 'JWT' })
        .setIssuedAt()
        .setExpirationTime(options.expiresIn ?? '1h')
        .sign(privateKey);
      return { apikey: PUBLISHABLE_KEY, authorization: `Bearer ${token}` };
    },
    async userHs256(userId, options = {}) {
      const token = await new SignJWT(userClaims(userId))
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setIssuedAt()
        .setExpirationTime(options.expiresIn ?? '1h')
        .sign(new TextEncoder().encode(options.secret ?? JWT_SECRET));
      return { apikey: anon, authorization: `Bearer ${token}` };
    },
  };
}

export interface Reply {
  status: number;
  headers: Headers;
  body: any;
}

export interface Client {
  request(method: string, path: string, options?: { headers?: Record<string, string>; body?: unknown; raw?: BodyInit }): Promise<Reply>;
  database: Database;
}

/** The handler, in process, against the test database (as the function's `postgres` login). */
export function inProcessClient(db: TestDatabase, credentials: Credentials, dbUrl?: string): Client {
  const raw = rawClient({ dbUrl: dbUrl ?? db.url('postgres', 'postgres'), signing: credentials.signing });
  return {
    database: raw.database,
    async request(method, path, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      let body: BodyInit | undefined = options.raw;
      if (options.body !== undefined) {
        body = JSON.stringify(options.body);
        headers['content-type'] ??= 'application/json';
      }
      const reply = await raw.send(new Request(`${BASE}${path}`, { method, headers, body }));
      return { status: reply.status, headers: reply.headers, body: reply.text ? JSON.parse(reply.text) : null };
    },
  };
}
