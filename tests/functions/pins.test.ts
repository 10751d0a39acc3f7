// Each function's deno.json pins the same versions that package.json installs, so what the tests
// run in Node is what Deno (locally and on the platform) runs.
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../local/database.ts';

const functionsDir = join(ROOT, 'supabase', 'functions');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const installed: Record<string, string> = { ...pkg.dependencies, ...pkg.devDependencies };
const functions = readdirSync(functionsDir).filter((name) => !name.startsWith('_') && !name.startsWith('.')
  && existsSync(join(functionsDir, name, 'index.ts')));

describe('dependency pins', () => {
  it('finds the calls function', () => {
    expect(functions).toContain('calls');
  });

  it.each(functions)('%s/deno.json pins every import to the version package.json installs', (name) => {
    const imports: Record<string, string> = JSON.parse(readFileSync(join(functionsDir, name, 'deno.json'), 'utf8')).imports;
    expect(Object.keys(imports).length).toBeGreaterThan(0);
    for (const [specifier, target] of Object.entries(imports)) {
      const match = /^npm:((?:@[^/]+\/)?[^@]+)@(\d+\.\d+\.\d+)$/.exec(target);
      expect(match, `${specifier} -> ${target} must be npm:<name>@<exact version>`).not.toBeNull();
      expect(installed[match![1]], `${match![1]} in package.json`).toBe(match![2]);
      expect(specifier).toBe(match![1]);
    }
  });

  it('imports nothing from JSR or unpinned URLs', () => {
    const offending: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (/\.(ts|json)$/.test(entry.name) && /\bjsr:|https:\/\/(deno\.land|esm\.sh)/.test(readFileSync(path, 'utf8'))) offending.push(path);
      }
    };
    walk(functionsDir);
    expect(offending).toEqual([]);
  });
});
