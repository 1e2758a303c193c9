// GET URL and print the body; exit 1 (with why on stderr) unless it answered 200 within
// TIMEOUT_MS (default 5000). The nested network test's curl, in whatever namespace it runs.
//
//   node http-get.mjs URL [TIMEOUT_MS]
import { get } from "node:http";

const [url, timeout = "5000"] = process.argv.slice(2);
const req = get(url, { timeout: Number(timeout) }, (res) => {
  let body = "";
  res.setEncoding("utf8").on("data", (d) => (body += d));
  res.on("end", () => {
    process.stdout.write(body);
    process.exit(res.statusCode === 200 ? 0 : 1);
  });
});
req.on("timeout", () => req.destroy(new Error(`no answer within ${timeout} ms`)));
req.on("error", (err) => {
  process.stderr.write(`${url}: ${err.message}\n`);
  process.exit(1);
});
