#!/usr/bin/env bash
# Regenerates src/proto from proto/*.proto. Needs `protoc` (Debian: protobuf-compiler).
# The generated code is committed, so building and testing never need protoc.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }
rm -rf src/proto && mkdir -p src/proto
protoc \
  --plugin=protoc-gen-ts_proto=node_modules/.bin/protoc-gen-ts_proto \
  --ts_proto_out=src/proto \
  --ts_proto_opt=forceLong=bigint,esModuleInterop=true,env=node,outputServices=grpc-js,importSuffix=.js,useOptionals=messages,outputJsonMethods=false,exportCommonSymbols=false,useExactTypes=false,outputTypeRegistry=false \
  -I proto proto/*.proto
# src/raft may import nothing else of the project, yet its messages must be the wire's
# eraftpb types. So the raft library owns the generated eraftpb module and src/proto
# re-exports it for everybody else.
mv src/proto/eraftpb.ts src/raft/eraftpb.ts
echo 'export * from "../raft/eraftpb.js";' > src/proto/eraftpb.ts
