// Living with Docker on the same host. Docker sets the FORWARD policy of iptables' filter
// table to drop and lets through only its own bridges' traffic; with nftables every base
// chain on the hook has its say, so our `inet vmctl` table accepting a guest's traffic is
// not enough: Docker's chain drops it anyway, and microVMs and containers on our networks
// lose egress and published ports. Docker's documented place for other rules is its
// DOCKER-USER chain, jumped to first from FORWARD (and never flushed by Docker): for each
// of our bridges, two rules at its top accept what enters or leaves the bridge. They
// decide nothing of ours — our own chains still apply the egress policy, the metadata
// refusal and the guards — they only take Docker's policy out of the way. Tagged with a
// comment naming the bridge, so they go with the network (and an inventory finds them).
//
// Only Docker on iptables-nft (Debian's default) is seen this way; one on iptables-legacy
// keeps its rules where nftables cannot see them (README.md, "Not done yet").
import type { NftCommand, NftJson } from "./host-network-rules.js";

const CHAIN = { family: "ip", table: "filter", chain: "DOCKER-USER" } as const;
const COMMENT_PREFIX = "vmctl ";

const commentOf = (bridge: string): string => `${COMMENT_PREFIX}${bridge}`;

/** One of our rules in DOCKER-USER: its handle, and the bridge its comment names. */
export interface DockerUserRule {
  readonly handle: number;
  readonly bridge: string;
}

/** The command that lists DOCKER-USER (NOT_FOUND when Docker has made none). */
export function listDockerUserCommands(): NftCommand[] {
  return [{ list: { chain: { family: CHAIN.family, table: CHAIN.table, name: CHAIN.chain } } }];
}

/** Our rules in a listing of DOCKER-USER (libnftables JSON); others' rules are not ours to read. */
export function readDockerUser(output: string): DockerUserRule[] {
  const parsed = JSON.parse(output) as { nftables?: readonly { rule?: { handle?: unknown; comment?: unknown } }[] };
  const rules: DockerUserRule[] = [];
  for (const item of parsed.nftables ?? []) {
    const { handle, comment } = item.rule ?? {};
    if (typeof handle === "number" && typeof comment === "string" && comment.startsWith(COMMENT_PREFIX)) {
      rules.push({ handle, bridge: comment.slice(COMMENT_PREFIX.length) });
    }
  }
  return rules;
}

/** Inserts at DOCKER-USER's top what lets `bridge`'s traffic past Docker's policy; nothing when it is there. */
export function allowBridgeCommands(bridge: string, existing: readonly DockerUserRule[]): NftCommand[] {
  if (existing.some((r) => r.bridge === bridge)) return [];
  const rule = (direction: "iifname" | "oifname"): NftCommand => ({
    insert: {
      rule: {
        ...CHAIN,
        expr: [{ match: { op: "==", left: { meta: { key: direction } }, right: bridge } }, { accept: null }] as NftJson,
        comment: commentOf(bridge),
      },
    },
  });
  return [rule("iifname"), rule("oifname")];
}

/** Deletes our rules for `bridge` (all of them, whatever else is in the chain). */
export function removeBridgeCommands(bridge: string, existing: readonly DockerUserRule[]): NftCommand[] {
  return existing.filter((r) => r.bridge === bridge).map((r) => ({ delete: { rule: { ...CHAIN, handle: r.handle } } }));
}
