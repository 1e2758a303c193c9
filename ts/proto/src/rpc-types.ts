// Call signatures of @grpc/grpc-js generic clients, so generated clients are typed.
import type * as grpc from "@grpc/grpc-js";

export interface UnaryMethod<Req, Res> {
  (request: Req, callback: grpc.requestCallback<Res>): grpc.ClientUnaryCall;
  (request: Req, metadata: grpc.Metadata, callback: grpc.requestCallback<Res>): grpc.ClientUnaryCall;
  (
    request: Req,
    metadata: grpc.Metadata,
    options: Partial<grpc.CallOptions>,
    callback: grpc.requestCallback<Res>,
  ): grpc.ClientUnaryCall;
}

export type ServerStreamingMethod<Req, Res> = (
  request: Req,
  metadata?: grpc.Metadata,
  options?: Partial<grpc.CallOptions>,
) => grpc.ClientReadableStream<Res>;

export interface ClientStreamingMethod<Req, Res> {
  (callback: grpc.requestCallback<Res>): grpc.ClientWritableStream<Req>;
  (metadata: grpc.Metadata, callback: grpc.requestCallback<Res>): grpc.ClientWritableStream<Req>;
}

export type BidiStreamingMethod<Req, Res> = (
  metadata?: grpc.Metadata,
  options?: Partial<grpc.CallOptions>,
) => grpc.ClientDuplexStream<Req, Res>;
