/** Request limits, documented in README.md. A request over a limit is refused whole. */
export const MAX_KEY_BYTES = 8 * 1024;
export const MAX_VALUE_BYTES = 8 * 1024 * 1024;
export const MAX_SCAN_LIMIT = 100_000;
/** gRPC message ceiling: a max-size value plus its key and envelope fits. */
export const MAX_GRPC_MESSAGE_BYTES = 16 * 1024 * 1024;
/**
 * A raw batch (RawBatchGet/Put/Delete) holds at most this many keys and this many bytes of keys
 * and values: it is one raft command on one region. The client sends far smaller batches (16,384
 * keys or 1 MiB), so these only stop a request that would stall its region.
 */
export const MAX_BATCH_KEYS = 65_536;
export const MAX_BATCH_BYTES = 8 * 1024 * 1024;
/** A RawBatchGet whose values would pass this many bytes is refused: its answer would not fit a gRPC message. */
export const MAX_BATCH_GET_ANSWER_BYTES = 12 * 1024 * 1024;
/** A RawScan or KvScan answer stops short of this many bytes of keys and values: past it the scan is refused (AnswerTooLargeError). */
export const MAX_SCAN_ANSWER_BYTES = 12 * 1024 * 1024;
