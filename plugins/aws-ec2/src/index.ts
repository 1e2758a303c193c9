// vmctl-plugin-aws-ec2: registers the "aws-ec2" target. Thin: parses the options, makes the factory.
import type { PluginEnvironment, PluginRegistration } from "@vmctl/core/contract";
import { Ec2Factory } from "./factory.js";
import { parseTargetOptions } from "./options.js";

export { EC2_CAPABILITIES, Ec2Factory } from "./factory.js";
export { Ec2Controller } from "./controller.js";
export type { Ec2ControllerOptions, Ec2RecordData, ServiceSettings } from "./controller.js";
export { parseEc2Spec, MAX_REPORT_EXPIRY_SECONDS } from "./spec.js";
export type { Ec2Spec, ShutdownBehavior } from "./spec.js";
export { parseTargetOptions, DEFAULT_INSTANCE_TYPE } from "./options.js";
export type { Ec2TargetOptions } from "./options.js";
export { guestScript, shellQuote, MAX_USER_DATA_BYTES } from "./user-data.js";
export type { GuestScriptInput, ReportUrls } from "./user-data.js";

/**
 * Makes the aws-ec2 factory from `targets.aws-ec2` (see the README for the options).
 * Always applicable: whether AWS answers is learnt at create time, with a clear error.
 * Throws (the target fails to load) on invalid options.
 */
export function initAwsEc2(env: PluginEnvironment): Ec2Factory {
  const options = parseTargetOptions(env.options);
  env.log.debug("aws-ec2 target ready", { region: options.region, endpoint: options.endpoint, logBucket: options.logBucket });
  return new Ec2Factory(options, env.log);
}

const registration: PluginRegistration = {
  name: "vmctl-plugin-aws-ec2",
  // Nothing on the host: the AWS API and its credentials (the SDK's standard chain:
  // environment, ~/.aws, instance roles) are checked at create time, with a clear error.
  targets: [{ target: "aws-ec2", requires: [], init: (env) => initAwsEc2(env) }],
};

export default registration;
