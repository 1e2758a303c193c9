// What vmctld may accept (docs/api-limits.md): an answer of OK or NOT_FOUND must not
// hide a request that breaks a documented rule. A create that is acknowledged keeps
// every limit (name, labels, dependsOn, readiness ranges, spec depth) and drops nothing
// it was sent (a "__proto__" key once vanished); a listing's label selectors are valid;
// a reference that cannot be a service id or name is INVALID_ARGUMENT, not NOT_FOUND.
// Images: nothing the suite sends can be pulled (requests.ts, "Image references"), so the
// store stays empty — a pull, inspect or remove that succeeds, a listing with an image, or
// a prune that finds anything to reclaim (files a failed pull left behind) is wrong.
// Networks: an acknowledged create keeps the name and subnet rules (docs/api-limits.md) and
// overlaps no other network nor the namespace's uplink; a service is never acknowledged
// with a network, ports or a policy, since the suite's target claims no network.
import * as grpc from "@grpc/grpc-js";
import { LABEL_KEY_PATTERN, LIMITS, NAME_PATTERN, SERVICE_ID_PATTERN } from "@vmctl/core/contract";
import { jsonFromStruct, vmctl, type JsonValue } from "@vmctl/proto";
import { UPLINK_SUBNET } from "../helpers/netns.js";
import type { RawOutcome } from "../helpers/raw-client.js";
import type { HostileRequest } from "./requests.js";

const pb = vmctl.v1;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function depthOf(value: JsonValue): number {
  if (Array.isArray(value)) return 1 + Math.max(0, ...value.map(depthOf));
  if (value !== null && typeof value === "object") return 1 + Math.max(0, ...Object.values(value).map(depthOf));
  return 0;
}

/** The service an acknowledged create answered: CreateService's message, or CreateServiceWithProgress's last event. */
export function acknowledgedService(request: HostileRequest, outcome: RawOutcome): vmctl.v1.Service {
  const last = outcome.responses.at(-1) ?? Buffer.alloc(0);
  if (request.method === "createServiceWithProgress") return pb.CreateServiceEvent.decode(last).service as vmctl.v1.Service;
  return pb.Service.decode(last);
}

function createAccepted(request: HostileRequest, outcome: RawOutcome): string | undefined {
  const sent = pb.CreateServiceRequest.decode(request.bytes);
  const made = acknowledgedService(request, outcome);
  if (!SERVICE_ID_PATTERN.test(made.id)) return `acknowledged with id ${JSON.stringify(made.id)}`;
  if (!NAME_PATTERN.test(made.name) || SERVICE_ID_PATTERN.test(made.name)) return `acknowledged with name ${JSON.stringify(made.name)}`;
  const labels = Object.entries(sent.labels);
  if (labels.length > LIMITS.labelCount) return `acknowledged with ${labels.length} labels`;
  let total = 0;
  for (const [key, value] of labels) {
    if (!LABEL_KEY_PATTERN.test(key)) return `acknowledged with label key ${JSON.stringify(key)}`;
    if (CONTROL.test(value) || Buffer.byteLength(value) > LIMITS.labelValueBytes) return `acknowledged with label value ${JSON.stringify(value.slice(0, 40))}`;
    total += Buffer.byteLength(value) + key.length;
  }
  if (total > LIMITS.labelsTotalBytes) return `acknowledged with ${total} bytes of labels`;
  if (JSON.stringify(Object.entries(made.labels).sort()) !== JSON.stringify(labels.sort())) return "labels acknowledged differ from the labels sent";
  if (sent.dependsOn.length > LIMITS.dependsOnCount) return `acknowledged with ${sent.dependsOn.length} dependencies`;
  const readiness = sent.readiness;
  if (readiness != null) {
    if ((readiness.intervalMs ?? 0) > LIMITS.readinessIntervalMs) return `acknowledged with readiness.intervalMs ${readiness.intervalMs}`;
    if ((readiness.timeoutMs ?? 0) > LIMITS.readinessTimeoutMs) return `acknowledged with readiness.timeoutMs ${readiness.timeoutMs}`;
  }
  if (!["", "none"].includes(sent.network) || sent.ports.length > 0 || sent.networkPolicy != null || made.network != null) {
    return `acknowledged with a network (${JSON.stringify(sent.network)}, ${sent.ports.length} ports) on a target that claims none`;
  }
  if (sent.spec != null) {
    const spec = jsonFromStruct(sent.spec) ?? {};
    if (depthOf(spec) > LIMITS.specDepth) return `acknowledged a spec ${depthOf(spec)} levels deep`;
    const keptKeys = Object.keys(jsonFromStruct(made.spec) ?? {}).sort();
    const sentKeys = Object.keys(spec).sort();
    if (sent.run == null && JSON.stringify(keptKeys) !== JSON.stringify(sentKeys)) {
      return `spec keys ${JSON.stringify(sentKeys)} acknowledged as ${JSON.stringify(keptKeys)}`;
    }
  }
  return undefined;
}

function selectorsAccepted(request: HostileRequest): string | undefined {
  const sent = pb.ListServicesRequest.decode(request.bytes);
  if (sent.labels.length > LIMITS.selectorCount) return `accepted ${sent.labels.length} selectors`;
  for (const selector of sent.labels) {
    const eq = selector.indexOf("=");
    const key = eq === -1 ? selector : selector.slice(0, eq);
    if (!LABEL_KEY_PATTERN.test(key) || (eq !== -1 && CONTROL.test(selector.slice(eq + 1)))) return `accepted the label selector ${JSON.stringify(selector.slice(0, 40))}`;
  }
  return undefined;
}

/** "a.b.c.d/n" as [first, last] address numbers. */
function range(cidr: string): [number, number] {
  const [address = "", prefix = "32"] = cidr.split("/");
  const base = address.split(".").reduce((n, p) => n * 256 + Number(p), 0);
  return [base, base + 2 ** (32 - Number(prefix)) - 1];
}

function networkAccepted(request: HostileRequest, outcome: RawOutcome, otherSubnets: (except: string) => readonly string[]): string | undefined {
  const sent = pb.CreateNetworkRequest.decode(request.bytes);
  const made = pb.Network.decode(outcome.responses.at(-1) ?? Buffer.alloc(0));
  if (!NAME_PATTERN.test(made.name) || made.name === "none" || made.name !== sent.name) return `acknowledged network ${JSON.stringify(made.name)} for ${JSON.stringify(sent.name.slice(0, 40))}`;
  if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(made.subnet) || made.prefixLength < 16 || made.prefixLength > 29) return `acknowledged subnet ${JSON.stringify(made.subnet)}`;
  if (sent.subnet !== "" && sent.subnet !== made.subnet) return `asked for ${JSON.stringify(sent.subnet.slice(0, 40))}, made ${made.subnet}`;
  const [a0, a1] = range(made.subnet);
  for (const other of [...otherSubnets(made.name), UPLINK_SUBNET]) {
    const [b0, b1] = range(other);
    if (a0 <= b1 && b0 <= a1) return `acknowledged ${made.subnet}, which overlaps ${other}`;
  }
  if (made.dns.length > 8 || made.dns.some((d) => !/^\d{1,3}(\.\d{1,3}){3}$/.test(d) || d === "0.0.0.0")) return `acknowledged resolvers ${JSON.stringify(made.dns)}`;
  if ((sent.policy?.cidrs?.length ?? 0) > 64) return `acknowledged ${sent.policy?.cidrs?.length} policy CIDRs`;
  return undefined;
}

/** A rule an OK or NOT_FOUND answer broke, or undefined. `otherSubnets`: the acknowledged networks' subnets but one's. */
export function acceptedWrongly(request: HostileRequest, outcome: RawOutcome, otherSubnets: (except: string) => readonly string[] = () => []): string | undefined {
  if (outcome.code === grpc.status.NOT_FOUND && outcome.details.serviceId !== undefined && !NAME_PATTERN.test(outcome.details.serviceId)) {
    return `NOT_FOUND for ${JSON.stringify(outcome.details.serviceId.slice(0, 40))}, which cannot be a service id or name (INVALID_ARGUMENT expected)`;
  }
  if (outcome.code !== grpc.status.OK) return undefined;
  if (request.method === "createService" || request.method === "createServiceWithProgress") return createAccepted(request, outcome);
  if (request.method === "listServices") return selectorsAccepted(request);
  if (request.method === "createNetwork") return networkAccepted(request, outcome, otherSubnets);
  if (request.method === "stopService") {
    const timeout = pb.StopServiceRequest.decode(request.bytes).timeoutMs;
    if (timeout != null && timeout > LIMITS.stopTimeoutMs) return `accepted a stop timeout of ${timeout} ms`;
  }
  return imageAccepted(request, outcome);
}

/** An OK answer of an image method from the store that must stay empty (or of PruneSystem, from targets holding nothing of the daemon's). */
function imageAccepted(request: HostileRequest, outcome: RawOutcome): string | undefined {
  const last = outcome.responses.at(-1) ?? Buffer.alloc(0);
  switch (request.method) {
    case "pullImage":
      return `pulled ${JSON.stringify(pb.PullImageRequest.decode(request.bytes).reference.slice(0, 80))}, which can name nothing pullable`;
    case "inspectImage":
      return `found ${JSON.stringify(pb.ImageRef.decode(request.bytes).reference.slice(0, 80))} in a store nothing was pulled into`;
    case "removeImage":
      return `removed ${JSON.stringify(pb.RemoveImageRequest.decode(request.bytes).reference.slice(0, 80))} from a store nothing was pulled into`;
    case "listImages": {
      const images = pb.ListImagesResponse.decode(last).images;
      return images.length === 0 ? undefined : `listed ${images.length} images in a store nothing was pulled into`;
    }
    case "pruneImages": {
      const pruned = pb.PruneImagesResponse.decode(last);
      const reclaimed = Number(pruned.reclaimedBytes);
      if (pruned.removed.length > 0 || reclaimed > 0) return `pruned ${pruned.removed.length} images and ${reclaimed} bytes from a store nothing was pulled into (left by a failed pull?)`;
      return undefined;
    }
    case "pruneSystem": {
      // The daemon's targets hold nothing under its owner label: nothing to prune, dry run or not.
      const pruned = pb.PruneSystemResponse.decode(last);
      return pruned.things.length === 0 ? undefined : `pruned ${pruned.things.length} things from targets that hold nothing of this daemon's`;
    }
    default:
      return undefined;
  }
}
