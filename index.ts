/** Entry point: read and validate the configuration, declare the stack, export its outputs. */
import * as pulumi from "@pulumi/pulumi";
import { loadConfig, pulumiConfigSource } from "./infra/config";
import { defineStack } from "./infra/stack";

const project = pulumi.getProject();
const config = loadConfig(pulumiConfigSource(project), { project, stack: pulumi.getStack() });
const stack = defineStack(config);

export const grafanaUrl = stack.grafanaUrl;
export const prometheusUrl = stack.prometheusUrl;
export const appUrls = stack.appUrls;
export const hosts = stack.hosts;
export const lokiBucket = stack.lokiBucket;
export const grafanaAdminUser = stack.grafanaAdminUser;
export const grafanaAdminPassword = stack.grafanaAdminPassword;
export const sshKeyFile = stack.sshKeyFile;
export const sshPrivateKey = stack.sshPrivateKey;
export const verification = stack.verification;
export const verificationSpec = stack.verificationSpec;
export const metricsWorkspace = stack.metricsWorkspace;
