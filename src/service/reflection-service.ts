import {
  create,
  type DescExtension,
  type DescFile,
  type DescService,
  fromBinary,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  ServerReflection,
  type ServerReflectionRequest,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
  ServerReflectionResponseSchema,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflectionRequestSchema as AlphaRequestSchema,
  ServerReflectionResponseSchema as AlphaResponseSchema,
  ServerReflection as ServerReflectionAlpha,
} from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** The two reflection services; v1alpha is the same protocol under its older name, which older tools still use. */
export const reflectionServices = [ServerReflection, ServerReflectionAlpha] as const;

/** google.rpc.Code values reflection answers with in ErrorResponse. */
const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha), answered from the generated descriptors: the files of the
 * served services and everything they import (google.api annotations, google.protobuf descriptors), so tools such as
 * `buf curl` and `grpcurl` need no .proto files. `services` is read on the first request, so it can list services
 * registered after these.
 */
export function createReflectionServices(services: () => readonly DescService[]): {
  v1: ServiceImpl<typeof ServerReflection>;
  v1alpha: ServiceImpl<typeof ServerReflectionAlpha>;
} {
  let index: ReflectionIndex | undefined;
  const respond = (req: ServerReflectionRequest): ServerReflectionResponse => {
    index ??= buildIndex(services());
    return create(ServerReflectionResponseSchema, {
      validHost: req.host,
      originalRequest: req,
      messageResponse: answer(index, req),
    });
  };
  return {
    v1: {
      async *serverReflectionInfo(requests) {
        for await (const req of requests) yield respond(req);
      },
    },
    v1alpha: {
      // The same messages field for field: translated through their wire form rather than mapped by hand.
      async *serverReflectionInfo(requests) {
        for await (const req of requests) {
          const v1 = fromBinary(ServerReflectionRequestSchema, toBinary(AlphaRequestSchema, req));
          yield fromBinary(AlphaResponseSchema, toBinary(ServerReflectionResponseSchema, respond(v1)));
        }
      },
    },
  };
}

interface ReflectionIndex {
  services: string[];
  files: Map<string, DescFile>;
  /** Fully-qualified names of messages, enums, services, methods and extensions, to the file declaring them. */
  symbols: Map<string, DescFile>;
  messages: Set<string>;
  /** Extensions by the message they extend. */
  extensions: Map<string, DescExtension[]>;
}

function buildIndex(services: readonly DescService[]): ReflectionIndex {
  const index: ReflectionIndex = {
    services: [...new Set(services.map((s) => s.typeName))].sort(),
    files: new Map(),
    symbols: new Map(),
    messages: new Set(),
    extensions: new Map(),
  };
  const visit = (file: DescFile) => {
    if (index.files.has(file.name)) return;
    index.files.set(file.name, file);
    for (const type of nestedTypes(file)) {
      index.symbols.set(type.typeName, file);
      if (type.kind === "message") index.messages.add(type.typeName);
      if (type.kind === "service")
        for (const method of type.methods) index.symbols.set(`${type.typeName}.${method.name}`, file);
      if (type.kind === "extension") {
        const list = index.extensions.get(type.extendee.typeName) ?? [];
        list.push(type);
        index.extensions.set(type.extendee.typeName, list);
      }
    }
    for (const dependency of file.dependencies) visit(dependency);
  };
  for (const service of services) visit(service.file);
  return index;
}

type MessageResponse = MessageInitShape<typeof ServerReflectionResponseSchema>["messageResponse"];

function answer(index: ReflectionIndex, req: ServerReflectionRequest): MessageResponse {
  const request = req.messageRequest;
  switch (request.case) {
    case "listServices":
      return {
        case: "listServicesResponse",
        value: { service: index.services.map((name) => ({ name })) },
      };
    case "fileByFilename":
      return files(index.files.get(request.value), `no file named "${request.value}"`);
    case "fileContainingSymbol":
      return files(index.symbols.get(request.value), `no symbol named "${request.value}"`);
    case "fileContainingExtension": {
      const { containingType, extensionNumber } = request.value;
      const extension = index.extensions.get(containingType)?.find((e) => e.number === extensionNumber);
      return files(extension?.file, `no extension ${extensionNumber} of "${containingType}"`);
    }
    case "allExtensionNumbersOfType": {
      if (!index.messages.has(request.value)) return error(NOT_FOUND, `no message named "${request.value}"`);
      const numbers = (index.extensions.get(request.value) ?? []).map((e) => e.number);
      return {
        case: "allExtensionNumbersResponse",
        value: { baseTypeName: request.value, extensionNumber: numbers },
      };
    }
    default:
      return error(INVALID_ARGUMENT, "the request names no question (message_request is unset)");
  }
}

/**
 * A file with everything it imports, as serialized FileDescriptorProtos, the file itself first. Clients cache
 * files by name, so every answer carries the whole closure rather than guessing what the client already has.
 */
function files(file: DescFile | undefined, notFound: string): MessageResponse {
  if (!file) return error(NOT_FOUND, notFound);
  const closure: DescFile[] = [];
  const add = (f: DescFile) => {
    if (closure.includes(f)) return;
    closure.push(f);
    for (const dependency of f.dependencies) add(dependency);
  };
  add(file);
  return {
    case: "fileDescriptorResponse",
    value: { fileDescriptorProto: closure.map((f) => toBinary(FileDescriptorProtoSchema, f.proto)) },
  };
}

function error(errorCode: number, errorMessage: string): MessageResponse {
  return { case: "errorResponse", value: { errorCode, errorMessage } };
}
