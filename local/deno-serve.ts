// Serving from a Deno script started by local/functions.ts runDenoScript: listen, print the
// ready line the parent waits for, and stop on SIGTERM/SIGINT or when the parent goes away
// (it holds our stdin open). Used by the functions server and the bench's servers.

/** The part of Deno's runtime these scripts use (typed here so tsc can check them too). */
export interface DenoRuntime {
  env: { get(name: string): string | undefined };
  serve(
    options: { hostname: string; port: number; signal?: AbortSignal; onListen?: (addr: { hostname: string; port: number }) => void },
    handler: (request: Request) => Response | Promise<Response>,
  ): { finished: Promise<void> };
  stdin: { readable: AsyncIterable<Uint8Array> };
  addSignalListener(signal: 'SIGTERM' | 'SIGINT', listener: () => void): void;
  exit(code: number): never;
}
export const deno = (globalThis as unknown as { Deno: DenoRuntime }).Deno;

/** Serves `handler` until told to stop, then runs `cleanup` and exits 0. */
export async function serveUntilStopped(options: {
  hostname: string;
  port: number;
  readyLine: string;
  handler: (request: Request) => Response | Promise<Response>;
  cleanup?: () => Promise<void>;
}): Promise<never> {
  const shutdown = new AbortController();
  const server = deno.serve({
    hostname: options.hostname,
    port: options.port,
    signal: shutdown.signal,
    onListen: ({ hostname, port }) => console.log(`${options.readyLine} http://${hostname}:${port}`),
  }, options.handler);
  const stop = () => shutdown.abort();
  deno.addSignalListener('SIGTERM', stop);
  deno.addSignalListener('SIGINT', stop);
  void (async () => {
    try {
      for await (const _ of deno.stdin.readable) { /* parent alive */ }
    } catch { /* closed */ }
    stop();
  })();
  await server.finished;
  await options.cleanup?.();
  return deno.exit(0);
}
