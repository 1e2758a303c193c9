// Everything that loads the AWS SDK, in one module the factory imports on first use:
// the SDK's EC2 and S3 clients cost vmctld ~75 MiB, which a host that never runs an
// aws-ec2 service should not pay.
export { makeClients } from "./clients.js";
export { Instances } from "./instances.js";
export { ensureBucket, Reports } from "./reports.js";
