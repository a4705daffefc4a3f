/** Request limits, documented in README.md. A request over a limit is refused whole. */
export const MAX_KEY_BYTES = 8 * 1024;
export const MAX_VALUE_BYTES = 8 * 1024 * 1024;
export const MAX_SCAN_LIMIT = 100_000;
/** gRPC message ceiling: a max-size value plus its key and envelope fits. */
export const MAX_GRPC_MESSAGE_BYTES = 16 * 1024 * 1024;
