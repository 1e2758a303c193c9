// "The internet" of the nested network test (linux-network.mjs runs it in a namespace of
// its own, behind the vmctl host's uplink): a DNS stub that answers A queries for NAME
// with ADDRESS (anything else: NXDOMAIN; AAAA of NAME: no answer), and an HTTP server on
// ADDRESS:80 serving /hello.txt. Every request's source address is appended to LOG, one
// JSON line each, so the test can see what NAT made of the guest.
//
//   node net-peer.mjs NAME ADDRESS LOG
import { createSocket } from "node:dgram";
import { appendFileSync } from "node:fs";
import { createServer } from "node:http";

const [name, address, log] = process.argv.slice(2);
if (!name || !address || !log) {
  console.error("usage: net-peer.mjs NAME ADDRESS LOG");
  process.exit(2);
}
const note = (entry) => appendFileSync(log, `${JSON.stringify(entry)}\n`);
const HELLO = "hello from the nested internet\n";

/** The question of a DNS query: its name, type and where the question ends. */
function question(msg) {
  const labels = [];
  let at = 12;
  while (at < msg.length && msg[at] !== 0) {
    labels.push(msg.subarray(at + 1, at + 1 + msg[at]).toString("latin1"));
    at += 1 + msg[at];
  }
  return { qname: labels.join(".").toLowerCase(), qtype: msg.readUInt16BE(at + 1), end: at + 5 };
}

const dns = createSocket("udp4");
dns.on("message", (msg, from) => {
  if (msg.length < 17) return;
  const { qname, qtype, end } = question(msg);
  note({ kind: "dns", from: from.address, qname, qtype });
  const known = qname === name;
  const answer = known && qtype === 1;
  const header = Buffer.alloc(12);
  msg.copy(header, 0, 0, 2); // id
  header.writeUInt16BE(0x8180 | (known ? 0 : 3), 2); // response, RD+RA, NOERROR / NXDOMAIN
  header.writeUInt16BE(1, 4); // one question
  header.writeUInt16BE(answer ? 1 : 0, 6);
  const parts = [header, msg.subarray(12, end)];
  if (answer) {
    const record = Buffer.alloc(16);
    record.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
    record.writeUInt16BE(1, 2); // A
    record.writeUInt16BE(1, 4); // IN
    record.writeUInt32BE(60, 6); // TTL
    record.writeUInt16BE(4, 10);
    address.split(".").forEach((octet, i) => record.writeUInt8(Number(octet), 12 + i));
    parts.push(record);
  }
  dns.send(Buffer.concat(parts), from.port, from.address);
});
dns.bind(53, address);

createServer((req, res) => {
  note({ kind: "http", from: req.socket.remoteAddress, url: req.url });
  if (req.url === "/hello.txt") {
    res.writeHead(200, { "content-type": "text/plain" }).end(HELLO);
  } else {
    res.writeHead(404).end("not here\n");
  }
}).listen(80, address, () => note({ kind: "ready" }));
