// The part of the CLI that needs gRPC: @vmctl/client (grpc-js, the generated protobuf
// code) and doctor's host report (through @vmctl/vmm-client, also on gRPC). The command
// bundles it apart, as dist/client.cjs, and loads it only for the verbs that talk to
// vmctld or run doctor: --help, --version, usage errors, `kernel` and `ps`'s fast path
// never read it (see README.md, "Start-up time").
export { connect } from "@vmctl/client";
export { hostReport } from "./doctor/host-report.js";
