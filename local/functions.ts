// The edge functions in supabase/functions, served the way `supabase functions serve` serves them,
// by a real Deno process (local/functions-server.ts) instead of the Docker edge runtime:
//   - every folder with an index.ts is a function, except `_shared` and names starting with `_` or `.`;
//   - `[functions.<name>]` in supabase/config.toml: enabled, verify_jwt (default true),
//     entrypoint, import_map;
//   - each function's deno.json (or its import_map) pins its imports. One Deno process serves
//     every function, so the pins are merged into one import map: a function's own files always
//     resolve with its own pins (import-map scope), shared files (`_shared/`) with the union.
// Deno runs with the repo root as its working directory, so the root package.json puts it in
// "manual" node_modules mode: bare and `npm:` specifiers resolve from ./node_modules, never from the
// network, and an `npm:pkg@x.y.z` pin that node_modules does not satisfy fails loudly.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import { ROOT } from './database.ts';

export const FUNCTIONS_DIR = join(ROOT, 'supabase', 'functions');
export const CONFIG_TOML = join(ROOT, 'supabase', 'config.toml');
export const FUNCTIONS_SERVER = join(ROOT, 'local', 'functions-server.ts');
export const DENO = join(ROOT, 'node_modules', '.bin', 'deno');

/** The `[functions.<name>]` keys we honour. */
export interface FunctionSettings {
  enabled?: boolean;
  verify_jwt?: boolean;
  /** Relative to supabase/. */
  entrypoint?: string;
  /** Relative to supabase/. */
  import_map?: string;
}

export interface FunctionSpec {
  name: string;
  /** Absolute path of the entry module. */
  entrypoint: string;
  verifyJwt: boolean;
  /** Absolute path of the deno.json / import map that pins this function's imports, if any. */
  importMap?: string;
}

/** What local/functions-server.ts receives as its only argument (JSON). */
export interface ServerManifest {
  hostname: string;
  port: number;
  functions: { name: string; entrypoint: string; verifyJwt: boolean }[];
}

// ------------------------------------------------------------------------------------------------
// supabase/config.toml: only `[functions.<name>]` tables with boolean and string values are read.
// ------------------------------------------------------------------------------------------------
function stripTomlComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#') {
      return line.slice(0, i);
    }
  }
  return line;
}

function tomlValue(raw: string): string | boolean | undefined {
  const v = raw.trim();
  if (v === 'true') return true;
  if (v === 'false') return false;
  const basic = /^"((?:[^"\\]|\\.)*)"$/.exec(v);
  if (basic) return JSON.parse(`"${basic[1]}"`) as string;
  const literal = /^'([^']*)'$/.exec(v);
  if (literal) return literal[1];
  return undefined;
}

export function parseFunctionsConfig(toml: string): Record<string, FunctionSettings> {
  const result: Record<string, FunctionSettings> = {};
  let current: FunctionSettings | undefined;
  for (const rawLine of toml.split(/\r?\n/)) {
    const line = stripTomlComment(rawLine).trim();
    if (!line) continue;
    const table = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (table) {
      const fn = /^functions\.(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))$/.exec(table[1]);
      const name = fn ? (fn[1] ?? fn[2] ?? fn[3]) : undefined;
      current = name ? (result[name] ??= {}) : undefined;
      continue;
    }
    if (!current) continue;
    const kv = /^([A-Za-z0-9_-]+)\s*=\s*(.+)$/.exec(line);
    if (!kv) continue;
    const value = tomlValue(kv[2]);
    if ((kv[1] === 'enabled' || kv[1] === 'verify_jwt') && typeof value === 'boolean') current[kv[1]] = value;
    if ((kv[1] === 'entrypoint' || kv[1] === 'import_map') && typeof value === 'string') current[kv[1]] = value;
  }
  return result;
}

// ------------------------------------------------------------------------------------------------
// Discovery
// ------------------------------------------------------------------------------------------------
/** The functions `supabase functions serve` would serve from `root`, sorted by name. */
export function discoverFunctions(root = ROOT): FunctionSpec[] {
  const functionsDir = join(root, 'supabase', 'functions');
  const configPath = join(root, 'supabase', 'config.toml');
  const settings = existsSync(configPath) ? parseFunctionsConfig(readFileSync(configPath, 'utf8')) : {};
  if (!existsSync(functionsDir)) return [];
  const specs: FunctionSpec[] = [];
  for (const name of readdirSync(functionsDir).sort()) {
    if (name.startsWith('_') || name.startsWith('.')) continue;
    const dir = join(functionsDir, name);
    if (!statSync(dir).isDirectory()) continue;
    const s = settings[name] ?? {};
    if (s.enabled === false) continue;
    const entrypoint = s.entrypoint ? resolve(root, 'supabase', s.entrypoint) : join(dir, 'index.ts');
    if (!existsSync(entrypoint)) continue;
    const importMap = s.import_map
      ? resolve(root, 'supabase', s.import_map)
      : ['deno.json', 'deno.jsonc'].map((f) => join(dir, f)).find((f) => existsSync(f));
    specs.push({ name, entrypoint, verifyJwt: s.verify_jwt ?? true, importMap });
  }
  return specs;
}

// ------------------------------------------------------------------------------------------------
// One import map for every function
// ------------------------------------------------------------------------------------------------
type Imports = Record<string, string>;
export interface ImportMap {
  imports: Imports;
  scopes: Record<string, Imports>;
}

/** JSON with comments and trailing commas (deno.jsonc) → JSON. */
function parseJsonc(text: string): unknown {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const next = text[i + 1];
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c === '/' && next === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else if (c === '/' && next === '*') {
      i += 2;
      while (i < text.length && !(text[i] === '*' && text[i + 1] === '/')) i++;
      i++;
    } else {
      out += c;
    }
  }
  return JSON.parse(out.replace(/,(\s*[}\]])/g, '$1'));
}

/** Relative addresses in a deno.json are relative to that file; the merged map lives elsewhere. */
function absolutise(imports: unknown, base: URL): Imports {
  const out: Imports = {};
  if (!imports || typeof imports !== 'object') return out;
  const relative = (s: string) => s.startsWith('./') || s.startsWith('../') || s.startsWith('/');
  for (const [key, target] of Object.entries(imports as Record<string, unknown>)) {
    if (typeof target !== 'string') continue;
    out[relative(key) ? new URL(key, base).href : key] = relative(target) ? new URL(target, base).href : target;
  }
  return out;
}

/**
 * Merges the functions' import maps. Returns null when no function pins anything (then bare
 * specifiers resolve through package.json alone). `warnings` lists conflicting pins.
 */
export function buildImportMap(functions: FunctionSpec[]): { map: ImportMap | null; warnings: string[] } {
  const map: ImportMap = { imports: {}, scopes: {} };
  const owner: Record<string, string> = {};
  const warnings: string[] = [];
  for (const fn of functions) {
    if (!fn.importMap) continue;
    const base = pathToFileURL(fn.importMap);
    const config = parseJsonc(readFileSync(fn.importMap, 'utf8')) as { imports?: unknown; scopes?: Record<string, unknown> };
    const imports = absolutise(config.imports, base);
    // The function's own folder always resolves with its own pins.
    const scope = pathToFileURL(dirname(fn.entrypoint) + '/').href;
    map.scopes[scope] = { ...map.scopes[scope], ...imports };
    for (const [prefix, scoped] of Object.entries(config.scopes ?? {})) {
      map.scopes[new URL(prefix, base).href] = absolutise(scoped, base);
    }
    // Everything else (e.g. _shared/) resolves with the union; the first function wins a conflict.
    for (const [key, target] of Object.entries(imports)) {
      if (!(key in map.imports)) {
        map.imports[key] = target;
        owner[key] = fn.name;
      } else if (map.imports[key] !== target) {
        warnings.push(`functions ${owner[key]} and ${fn.name} map "${key}" differently ` +
          `(${map.imports[key]} vs ${target}); files outside their folders (e.g. _shared/) use ${owner[key]}'s`);
      }
    }
  }
  const empty = Object.keys(map.imports).length === 0 && Object.keys(map.scopes).every((s) => Object.keys(map.scopes[s]).length === 0);
  return { map: empty ? null : map, warnings };
}

// ------------------------------------------------------------------------------------------------
// The Deno process
// ------------------------------------------------------------------------------------------------
/** KEY=VALUE lines, as in supabase/functions/.env (the CLI's default --env-file). */
export function parseDotenv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(raw);
    if (!m) continue;
    let value = m[2];
    const quoted = /^"(.*)"$/.exec(value) ?? /^'(.*)'$/.exec(value);
    if (quoted) value = quoted[1];
    else value = value.replace(/\s+#.*$/, '');
    env[m[1]] = value;
  }
  return env;
}

export interface FunctionsServer extends DenoProcess {
  /** e.g. http://127.0.0.1:54321 (functions under /functions/v1/<name>). */
  url: string;
  functions: FunctionSpec[];
}

export interface StartFunctionsOptions {
  /** The environment the functions see (local/keys.ts functionEnv()). */
  env: Record<string, string>;
  port: number;
  hostname?: string;
  /** Folder for the generated import map. */
  workDir: string;
  /** Each line Deno prints (function logs included). Default: stdout with a prefix. */
  onLog?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** How long to wait for the server to listen and import every function. */
  readyTimeoutMs?: number;
}

const READY = 'functions-server ready ';

export interface DenoProcess {
  child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal) when Deno exits. */
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when Deno has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Runs `script` with Deno the way our functions run: imports resolved by the functions' merged
 * import map from ./node_modules (no network), its own process group, stdin held open so it never
 * outlives us. Resolves once it prints a line starting with `readyPrefix`.
 */
export async function runDenoScript(options: {
  script: string;
  scriptArgs?: string[];
  env: Record<string, string>;
  workDir: string;
  readyPrefix: string;
  onLog: (line: string, stream: 'stdout' | 'stderr') => void;
  readyTimeoutMs?: number;
}): Promise<DenoProcess> {
  const { map, warnings } = buildImportMap(discoverFunctions());
  for (const w of warnings) options.onLog(`warning: ${w}`, 'stderr');
  // --node-modules-dir=manual: npm installed ./node_modules, Deno only reads it (also if a root
  // deno.json appears one day); --no-lock: package-lock.json already pins it, write no deno.lock.
  const args = ['run', '--node-modules-dir=manual', '--no-lock', '--allow-net', '--allow-env', '--allow-read'];
  if (map) {
    mkdirSync(options.workDir, { recursive: true });
    const mapPath = join(options.workDir, 'functions-import-map.json');
    writeFileSync(mapPath, JSON.stringify(map, null, 2) + '\n');
    args.push(`--import-map=${mapPath}`);
  }
  args.push(options.script, ...(options.scriptArgs ?? []));

  const dotenvPath = join(FUNCTIONS_DIR, '.env');
  const dotenv = existsSync(dotenvPath) ? parseDotenv(readFileSync(dotenvPath, 'utf8')) : {};
  const passThrough = Object.fromEntries(
    ['PATH', 'HOME', 'DENO_DIR', 'TMPDIR', 'TZ'].flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])),
  );
  const child = spawn(DENO, args, {
    cwd: ROOT,
    // stdin stays a pipe: the script exits when it closes, so Deno never outlives us.
    stdio: ['pipe', 'pipe', 'pipe'],
    // Its own process group: a terminal's Ctrl-C reaches us, and we stop Deno in order.
    detached: true,
    env: {
      ...passThrough,
      ...dotenv,
      ...options.env,
      DENO_NO_UPDATE_CHECK: '1',
      DENO_NO_PROMPT: '1',
      ...(process.stdout.isTTY ? {} : { NO_COLOR: '1' }),
    },
  });
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  const timeoutMs = options.readyTimeoutMs ?? 60_000;

  const ready = new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`${options.script} did not get ready within ${timeoutMs} ms`)), timeoutMs);
    const recent: string[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith(options.readyPrefix)) {
        clearTimeout(timer);
        resolveReady();
      } else {
        options.onLog(line, 'stdout');
      }
    });
    createInterface({ input: child.stderr! }).on('line', (line) => {
      recent.push(line);
      if (recent.length > 30) recent.shift();
      options.onLog(line, 'stderr');
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`could not run ${DENO}: ${error.message}`));
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`Deno exited (code ${code}) before ${options.script} was ready:\n${recent.join('\n')}`));
    });
  });

  // The whole process group: without its install script, node_modules/.bin/deno is a Node shim
  // (deno/bin.cjs) that runs the real binary as its child.
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, name);
    } catch {
      child.kill(name);
    }
  };
  const stop = async (graceMs = 5_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    signal('SIGTERM');
    const timer = setTimeout(() => signal('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };

  try {
    await ready;
  } catch (error) {
    await stop(1_000);
    throw error;
  }
  return { child, exited, stop };
}

/** Starts local/functions-server.ts in Deno and resolves once every function is imported and it listens. */
export async function startFunctionsServer(options: StartFunctionsOptions): Promise<FunctionsServer> {
  const hostname = options.hostname ?? '127.0.0.1';
  const functions = discoverFunctions();
  const manifest: ServerManifest = {
    hostname,
    port: options.port,
    functions: functions.map((f) => ({ name: f.name, entrypoint: pathToFileURL(f.entrypoint).href, verifyJwt: f.verifyJwt })),
  };
  const deno = await runDenoScript({
    script: FUNCTIONS_SERVER,
    scriptArgs: [JSON.stringify(manifest)],
    env: options.env,
    workDir: options.workDir,
    readyPrefix: READY,
    onLog: options.onLog ?? ((line: string) => console.log(`[functions] ${line}`)),
    readyTimeoutMs: options.readyTimeoutMs,
  });
  return { url: `http://${hostname}:${options.port}`, functions, ...deno };
}
