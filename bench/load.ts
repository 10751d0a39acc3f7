// The load generator: autocannon (keep-alive HTTP/1.1 clients), with every 2xx response's latency
// kept at full resolution (autocannon's own histogram rounds to whole milliseconds).
import autocannon from 'autocannon';
import { percentile } from './stats.ts';

export interface LoadRequest {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  /** Called for every request: return the path and/or body to send. */
  next?: (n: number) => { path?: string; body?: string };
}

export interface LoadResult {
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  seconds: number;
  rps: number;
  latenciesMs: number[];
  p50: number;
  p99: number;
  statusCounts: Record<string, number>;
}

export async function runLoad(options: {
  url: string;
  connections: number;
  seconds: number;
  request: LoadRequest;
}): Promise<LoadResult> {
  const latencies: number[] = [];
  const statusCounts: Record<string, number> = {};
  let n = 0;
  const { request } = options;
  const instance = autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.seconds,
    timeout: 10,
    requests: [{
      method: request.method,
      path: request.path,
      headers: request.headers ?? {},
      setupRequest: (req: { path: string; body?: string }) => {
        if (!request.next) return req;
        const next = request.next(n++);
        return { ...req, ...(next.path ? { path: next.path } : {}), ...(next.body !== undefined ? { body: next.body } : {}) };
      },
    }],
  });
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTimeMs: number) => {
    statusCounts[statusCode] = (statusCounts[statusCode] ?? 0) + 1;
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTimeMs);
  });
  const result = await instance as {
    requests: { total: number }; non2xx: number; errors: number; timeouts: number; duration: number; '2xx': number;
  };
  const ok = result['2xx'];
  return {
    requests: result.requests.total,
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    seconds: result.duration,
    rps: ok / result.duration,
    latenciesMs: latencies,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    statusCounts,
  };
}

/** Several runs of the same request, taken together. */
export function mergeLoads(results: LoadResult[]): LoadResult {
  const latencies = results.flatMap((r) => r.latenciesMs);
  const sum = (f: (r: LoadResult) => number) => results.reduce((a, r) => a + f(r), 0);
  const statusCounts: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.statusCounts)) statusCounts[k] = (statusCounts[k] ?? 0) + v;
  const seconds = sum((r) => r.seconds);
  const ok = sum((r) => r.ok);
  return {
    requests: sum((r) => r.requests), ok, non2xx: sum((r) => r.non2xx), errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts), seconds, rps: ok / seconds, latenciesMs: latencies,
    p50: percentile(latencies, 50), p99: percentile(latencies, 99), statusCounts,
  };
}
