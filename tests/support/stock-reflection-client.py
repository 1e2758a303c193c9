"""A stock gRPC client that knows nothing of vmctl but what server reflection tells it.

Usage: stock-reflection-client.py unix:///path/to/vmctld.sock

Runs in the venv scripts/setup makes (grpcio + grpcio-reflection, pinned in
scripts/grpc-requirements.txt) and prints one JSON object describing what it found, for
tests/orchestrator/reflection.test.ts to check. Every step is what grpcurl or a Python
user would do: list services, describe every method (resolving every message type they
reach, google.protobuf.Struct included), fetch vmctl/v1/vmctl.proto by name, and call
ListTargets with message classes built from the reflected descriptors alone.
"""

import json
import sys

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase


def describe_message(desc, seen):
    """Every field of `desc` and of each message type it reaches, by full name."""
    if desc.full_name in seen:
        return
    fields = []
    seen[desc.full_name] = {"map_entry": desc.GetOptions().map_entry, "fields": fields}
    for field in desc.fields:
        fields.append(
            {
                "name": field.name,
                "number": field.number,
                "type": field.message_type.full_name if field.message_type else field.type,
                "optional": field.has_presence and field.containing_oneof is not None and field.containing_oneof.name == "_" + field.name,
            }
        )
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            describe_message(field.message_type, seen)


def v1_list_services(channel):
    """grpc.reflection.v1 (the v1alpha message classes are wire-identical)."""
    call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    responses = call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    return [s.name for r in responses for s in r.list_services_response.service]


def main():
    target = sys.argv[1]
    out = {}
    with grpc.insecure_channel(target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        pool = descriptor_pool.DescriptorPool(database)

        out["services"] = sorted(database.get_services())
        out["v1_services"] = sorted(v1_list_services(channel))

        methods = {}
        messages = {}
        service = pool.FindServiceByName("vmctl.v1.Orchestrator")
        for method in service.methods:
            methods[method.name] = {
                "input": method.input_type.full_name,
                "output": method.output_type.full_name,
                "server_streaming": method.server_streaming,
                "client_streaming": method.client_streaming,
            }
            describe_message(method.input_type, messages)
            describe_message(method.output_type, messages)
        out["methods"] = methods
        out["messages"] = messages

        proto = database.FindFileByName("vmctl/v1/vmctl.proto")
        out["file"] = {"name": proto.name, "package": proto.package, "dependency": list(proto.dependency), "syntax": proto.syntax}
        out["struct_file"] = pool.FindMessageTypeByName("google.protobuf.Struct").file.name

        # A call built only from reflection.
        request_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("vmctl.v1.ListTargetsRequest"))
        response_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("vmctl.v1.ListTargetsResponse"))
        list_targets = channel.unary_unary(
            "/vmctl.v1.Orchestrator/ListTargets",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        response = list_targets(request_class(), timeout=10)
        out["targets"] = [{"name": t.name, "status": t.status, "exec": t.capabilities.exec} for t in response.targets]

        # Something that is not there is NOT_FOUND, as reflection says it.
        try:
            database.FindFileByName("vmctl_v1.proto")
            out["missing_file"] = "found"
        except KeyError:
            out["missing_file"] = "not found"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
