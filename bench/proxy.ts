// A TCP proxy between a client and Postgres that counts round trips: a "turn" is each time the
// client starts sending after the server has replied (or for the first time on a connection).
// Pipelined messages sent before any answer count as one turn. It also decodes the wire
// protocol's message types, so one request's turns can be shown (Q = simple query, P/B/D/E/S/H =
// Parse/Bind/Describe/Execute/Sync/Flush; server 1/2/t/T/D/C/Z = ParseComplete, BindComplete,
// ParameterDescription, RowDescription, DataRow, CommandComplete, ReadyForQuery).
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TurnStats {
  turns: number;
  clientBytes: number;
  serverBytes: number;
  connections: number;
}

export interface TurnProxy {
  port: number;
  stats: TurnStats;
  reset(): void;
  /** Records a readable trace of every turn until `stopTrace()`. */
  startTrace(): void;
  stopTrace(): string[];
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

/** Splits a protocol stream into messages; the client's first message(s) have no type byte. */
class Decoder {
  private buffer: Buffer = Buffer.alloc(0);
  untyped: number;
  constructor(untyped: number, private readonly onMessage: (type: string, body: Buffer) => void) {
    this.untyped = untyped;
  }
  push(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    for (;;) {
      if (this.untyped > 0) {
        if (this.buffer.length < 8) return;
        const length = this.buffer.readUInt32BE(0);
        if (this.buffer.length < length) return;
        const code = this.buffer.readUInt32BE(4);
        this.onMessage(code === SSL_REQUEST ? 'SSLRequest' : code === GSSENC_REQUEST ? 'GSSENCRequest'
          : code === CANCEL_REQUEST ? 'CancelRequest' : 'Startup', this.buffer.subarray(8, length));
        this.buffer = this.buffer.subarray(length);
        // After an SSL/GSS request the client sends another untyped message (the startup).
        if (code !== SSL_REQUEST && code !== GSSENC_REQUEST) this.untyped = 0;
        continue;
      }
      if (this.buffer.length < 5) return;
      const length = this.buffer.readUInt32BE(1);
      if (this.buffer.length < 1 + length) return;
      this.onMessage(String.fromCharCode(this.buffer[0]), this.buffer.subarray(5, 1 + length));
      this.buffer = this.buffer.subarray(1 + length);
    }
  }
}

function describeClient(type: string, body: Buffer): string {
  if (type === 'Q') return `Q(${body.toString('utf8', 0, Math.max(0, body.length - 1)).replace(/\s+/g, ' ').trim().slice(0, 48)})`;
  if (type === 'P') {
    // Parse: statement name \0 query \0 …
    const nameEnd = body.indexOf(0);
    const queryEnd = body.indexOf(0, nameEnd + 1);
    return `P(${body.toString('utf8', nameEnd + 1, queryEnd).replace(/\s+/g, ' ').trim().slice(0, 48)})`;
  }
  return type;
}

export async function startTurnProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TurnProxy> {
  const stats: TurnStats = { turns: 0, clientBytes: 0, serverBytes: 0, connections: 0 };
  let trace: string[] | null = null;
  const sockets = new Set<Socket>();
  const flushers = new Set<() => void>();

  const server: Server = createServer((client) => {
    stats.connections++;
    const upstream = connect(targetPort, targetHost);
    sockets.add(client);
    sockets.add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    let last: 'none' | 'client' | 'server' = 'none';
    let pendingServerSingleByte = 0;
    let line: string[] = [];
    const flushLine = () => {
      if (trace && line.length) trace.push(`${last === 'client' ? 'client →' : 'server ←'} ${line.join(' ')}`);
      line = [];
    };
    flushers.add(flushLine);
    const clientDecoder = new Decoder(1, (type, body) => {
      if (type === 'SSLRequest' || type === 'GSSENCRequest') pendingServerSingleByte++;
      if (trace) line.push(describeClient(type, body));
    });
    const serverDecoder = new Decoder(0, (type) => {
      if (trace) line.push(type);
    });

    client.on('data', (chunk: Buffer) => {
      if (last !== 'client') {
        flushLine();
        stats.turns++;
        last = 'client';
      }
      stats.clientBytes += chunk.length;
      clientDecoder.push(chunk);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (last !== 'server') {
        flushLine();
        last = 'server';
      }
      stats.serverBytes += chunk.length;
      let data = chunk;
      while (pendingServerSingleByte > 0 && data.length > 0) {
        pendingServerSingleByte--;
        data = data.subarray(1);
      }
      if (data.length) serverDecoder.push(data);
      client.write(chunk);
    });
    const end = () => {
      flushers.delete(flushLine);
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });

  return {
    port,
    stats,
    reset() {
      stats.turns = 0;
      stats.clientBytes = 0;
      stats.serverBytes = 0;
    },
    startTrace() {
      trace = [];
    },
    stopTrace() {
      for (const flush of flushers) flush();
      const out = trace ?? [];
      trace = null;
      return out;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
