/**
 * The list prices the cost estimate quotes: AWS on-demand, us-east-1, Linux. Other regions differ
 * (the estimate says so); a type missing here is refused rather than priced at a guess.
 */
export const PRICE_REGION = "us-east-1";

/** USD per instance-hour. */
export const INSTANCE_HOURLY_USD: Readonly<Record<string, number>> = {
  "t3.micro": 0.0104,
  "t3.small": 0.0208,
  "t3.medium": 0.0416,
  "t3.large": 0.0832,
};

/** USD per in-use public IPv4 address-hour (charged since February 2024; each host has an Elastic IP). */
export const PUBLIC_IPV4_HOURLY_USD = 0.005;

/** USD per GiB-month of gp3 (baseline IOPS and throughput, which the stack does not raise). */
export const GP3_GIB_MONTH_USD = 0.08;

/** AWS bills a GiB-month over 730 hours. */
export const HOURS_PER_MONTH = 730;

/**
 * Amazon Managed Service for Prometheus (metricsStore=amp) bills by use, in three dimensions
 * (https://aws.amazon.com/prometheus/pricing/, read 2026-12-06): metric samples ingested (tiered
 * by the month's volume), query samples processed (QSP: every data point a PromQL query reads,
 * Grafana's alert rule evaluations included) and storage in GB-months (1 GB = 2^30 bytes; a sample
 * takes 1-2 bytes plus its series' metadata). No charge for data transfer in. Its free tier, each
 * month (the same page; AWS's free-tier usage types list AMP:MetricSampleCount,
 * AMP:QuerySamplesProcessed and AMP:MetricStorageByteHrs as "Always Free"):
 */
export const AMP_FREE_TIER_MONTHLY = {
  samplesIngested: 40_000_000,
  querySamplesProcessed: 200_000_000_000,
  storageGb: 10,
} as const;

/** Seconds in AWS's billing month (HOURS_PER_MONTH): a steady samples/s rate times this is the month's samples. */
export const SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600;
