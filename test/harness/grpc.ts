import * as grpc from "@grpc/grpc-js";
import { TinyKvClient } from "../../src/proto/tinykvpb.js";

type UnaryMethod<Req, Res> = (req: Req, cb: (err: grpc.ServiceError | null, res: Res) => void) => grpc.ClientUnaryCall;

/** Promise form of one unary rpc of a generated client. */
export function call<Req, Res>(client: grpc.Client, method: UnaryMethod<Req, Res>, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(client, req, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

export function tinyKvClient(addr: string): TinyKvClient {
  return new TinyKvClient(addr, grpc.credentials.createInsecure());
}
