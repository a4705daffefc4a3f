import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import type { Driver, DriverOptions } from "./types.js";
import { CHANNEL_OPTIONS } from "./types.js";

/** Finds bench/etcd/rpc.proto from either bench/drivers/*.ts (tsx) or dist/bench/drivers/*.js. */
function protoPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const p = join(dir, "bench", "etcd", "rpc.proto");
    if (existsSync(p)) return p;
    const q = join(dir, "etcd", "rpc.proto");
    if (existsSync(q)) return q;
    dir = dirname(dir);
  }
  throw new Error("cannot find bench/etcd/rpc.proto");
}

type Unary = (
  req: object,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: any) => void,
) => void;
interface KvClient extends grpc.Client {
  Put: Unary;
  Range: Unary;
}

let kvCtor: (new (addr: string, creds: grpc.ChannelCredentials, opts: object) => KvClient) | undefined;
function kvClientCtor() {
  if (!kvCtor) {
    const def = protoLoader.loadSync(protoPath(), { keepCase: true, longs: Number, enums: String, defaults: false });
    const pkg = grpc.loadPackageDefinition(def) as any;
    kvCtor = pkg.etcdserverpb.KV;
  }
  return kvCtor!;
}

/** The smallest key greater than every key with `prefix` (etcd's range_end for a prefix). */
function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  b[b.length - 1]! += 1;
  return b;
}

/**
 * etcd v3 KV through grpc-js. Reads are linearizable (serializable=false); writes use etcd's
 * default durability. Calls are spread round-robin over all members (followers forward writes
 * to the leader and do a ReadIndex round for reads, as with etcd's own client balancer).
 */
export class EtcdDriver implements Driver {
  readonly name = "etcd";
  private readonly clients: KvClient[] = [];
  private next = 0;
  private readonly rangeEnd: Buffer;

  constructor(private readonly opts: DriverOptions) {
    const Ctor = kvClientCtor();
    for (let c = 0; c < opts.channels; c++)
      for (const ep of opts.endpoints)
        this.clients.push(new Ctor(ep, grpc.credentials.createInsecure(), { ...CHANNEL_OPTIONS, "bench.channel": c }));
    this.next = Math.floor(Math.random() * this.clients.length);
    this.rangeEnd = prefixEnd(opts.keyPrefix);
  }

  private call(method: "Put" | "Range", req: object): Promise<any> {
    const client = this.clients[this.next++ % this.clients.length]!;
    return new Promise((resolve, reject) => {
      client[method](req, new grpc.Metadata(), { deadline: Date.now() + this.opts.timeoutMs }, (err, res) =>
        err ? reject(err) : resolve(res),
      );
    });
  }

  async put(key: Buffer, value: Buffer): Promise<void> {
    await this.call("Put", { key, value });
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    const res = await this.call("Range", { key, serializable: false });
    const kv = res.kvs?.[0];
    return kv ? (kv.value as Buffer) : undefined;
  }

  async scan(start: Buffer, limit: number): Promise<number> {
    const res = await this.call("Range", { key: start, range_end: this.rangeEnd, limit, serializable: false });
    return res.kvs?.length ?? 0;
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}
