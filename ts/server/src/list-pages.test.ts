import test from "ava";
import { LIMITS, VmctlError, type ServiceFilter, type ServiceRecord } from "@vmctl/core";
import { vmctl } from "@vmctl/proto";
import { encodePageToken, filterHash, pageOf } from "./list-pages.js";

function record(i: number, labels: Record<string, string> = {}, createdMs = 1_700_000_000_000 + i): ServiceRecord {
  const at = new Date(createdMs);
  return {
    id: i.toString(16).padStart(16, "0"),
    name: `s${i}`,
    target: "process",
    labels,
    spec: {},
    dependsOn: [],
    phase: "created",
    addresses: [],
    ready: false,
    createdAt: at,
    updatedAt: at,
  };
}

/** Every page in turn, as the client follows them. */
function allPages(services: ServiceRecord[], filter: ServiceFilter, pageSize: number): vmctl.v1.IService[][] {
  const pages: vmctl.v1.IService[][] = [];
  for (let token = ""; ; ) {
    const page = pageOf(services, filter, { pageSize, pageToken: token });
    pages.push(page.services);
    if (page.nextPageToken === "") return pages;
    token = page.nextPageToken;
    if (pages.length > 10_000) throw new Error("does not end");
  }
}

test("pages of page_size, in (created, id) order, the last one without a token", (t) => {
  const services = Array.from({ length: 7 }, (_, i) => record(i));
  const pages = allPages([...services].reverse(), {}, 3);
  t.deepEqual(pages.map((p) => p.map((s) => s.name)), [["s0", "s1", "s2"], ["s3", "s4", "s5"], ["s6"]]);
  t.deepEqual(pageOf(services, {}, { pageSize: 7, pageToken: "" }).nextPageToken, "");
  t.deepEqual(pageOf([], {}, { pageSize: 0, pageToken: "" }), { services: [], nextPageToken: "" });
});

test("0 is the default page size; above the maximum counts as the maximum", (t) => {
  const services = Array.from({ length: LIMITS.pageSizeMax + 5 }, (_, i) => record(i));
  t.is(pageOf(services, {}, { pageSize: 0, pageToken: "" }).services.length, LIMITS.pageSizeDefault);
  t.is(pageOf(services, {}, { pageSize: 4_000_000_000, pageToken: "" }).services.length, LIMITS.pageSizeMax);
});

test("a page is cut before its services pass LIMITS.pageBytes encoded, and always holds one", (t) => {
  // 16 KiB of labels each: 300 of them are 4.8 MB, over gRPC's 4 MiB message limit in one answer.
  const labels = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, "v".repeat(250)]));
  const services = Array.from({ length: 300 }, (_, i) => record(i, labels));
  const pages = allPages(services, {}, 0);
  t.true(pages.length >= 3, `${pages.length} pages`);
  for (const page of pages) {
    const bytes = vmctl.v1.ListServicesResponse.encode({ services: page, nextPageToken: "x".repeat(100) }).finish().length;
    t.true(bytes <= LIMITS.pageBytes + 200, `${bytes} bytes`);
  }
  t.is(pages.flat().length, 300);
  // one service larger than a page still comes, alone
  const big = { huge: "v".repeat(LIMITS.pageBytes) };
  t.is(pageOf([record(1, big), record(2)], {}, { pageSize: 0, pageToken: "" }).services.length, 1);
});

test("services created or deleted between pages: nothing is repeated or skipped among those that stay", (t) => {
  const services = Array.from({ length: 6 }, (_, i) => record(i));
  const first = pageOf(services, {}, { pageSize: 2, pageToken: "" });
  // s1 (the last one sent) and s2 are deleted, s9 is created, between the pages
  const later = [...services.filter((s) => s.name !== "s1" && s.name !== "s2"), record(9)];
  const second = pageOf(later, {}, { pageSize: 10, pageToken: first.nextPageToken });
  t.deepEqual(second.services.map((s) => s.name), ["s3", "s4", "s5", "s9"]);
  // same created time: the id orders them
  const twins = [record(2, {}, 5), record(1, {}, 5), record(3, {}, 5)];
  t.deepEqual(allPages(twins, {}, 1).flat().map((s) => s.name), ["s1", "s2", "s3"]);
});

test("a bad page token is INVALID_ARGUMENT naming pageToken, with a short echo of it", (t) => {
  const services = [record(1), record(2)];
  const refused = (token: string, filter: ServiceFilter = {}): VmctlError => {
    const err = t.throws(() => pageOf(services, filter, { pageSize: 1, pageToken: token }), { instanceOf: VmctlError });
    t.is(err.code, "INVALID_ARGUMENT");
    t.is(err.details.field, "pageToken");
    t.regex(err.message, /^pageToken: /);
    return err;
  };
  refused("garbage!");
  refused(Buffer.from("not json").toString("base64url"));
  refused(Buffer.from(JSON.stringify({ v: 1, c: "x", i: 3, f: "" })).toString("base64url"));
  t.true(refused("A".repeat(1_000_000)).message.length < 200);
  // a token from a listing with another filter
  const other = pageOf(services, { target: "oci" }, { pageSize: 1, pageToken: "" }).nextPageToken;
  t.regex(refused(other).message, /other filters/);
  t.notThrows(() => pageOf(services, { target: "oci" }, { pageSize: 1, pageToken: other }));
  t.regex(refused(encodePageToken({ createdMs: 0, id: "0" }, filterHash({ labels: ["a"] }))).message, /other filters/);
  // the same filter in another order is the same filter
  t.is(filterHash({ labels: ["a", "b"], phases: ["running", "created"] }), filterHash({ labels: ["b", "a"], phases: ["created", "running"] }));
});
