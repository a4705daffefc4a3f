/**
 * A TinyKv client built at run time from proto/ by another protobuf implementation (protobufjs
 * via proto-loader), as a user of another language would build one: snake_case fields, 64-bit
 * numbers as strings, defaults filled in. Untyped by nature.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";

export const PROTO_DIR = fileURLToPath(new URL("../../proto", import.meta.url));

export interface GeneratedTinyKv {
  /** Calls a unary rpc by its proto name (e.g. "RawGet"); rejects with the gRPC error. */
  call(method: string, req: object): Promise<any>;
  close(): void;
}

export function generatedTinyKvClient(addr: string): GeneratedTinyKv {
  const def = protoLoader.loadSync("tinykvpb.proto", {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: String,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const client = new pkg.tinykvpb.TinyKv(addr, grpc.credentials.createInsecure());
  return {
    call: (method, req) =>
      new Promise<any>((resolve, reject) =>
        client[method](req, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))),
      ),
    close: () => client.close(),
  };
}
