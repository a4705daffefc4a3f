import { TinyKvError } from "../../util/errors.js";

/** An rpc this server does not serve (yet): answered with gRPC status UNIMPLEMENTED. */
export class UnimplementedError extends TinyKvError {
  constructor(readonly rpc: string) {
    super(`${rpc} is not implemented by tinykv-ts`);
  }
}
