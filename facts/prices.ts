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

/**
 * AMP's ingestion price, USD per 10 million samples, tiered by the month's running total of
 * samples ingested: the first 2 billion at $0.90, the next 250 billion at $0.35, beyond 252 billion
 * at $0.16; and its storage at $0.03 per GB-month. AWS publishes them on
 * https://aws.amazon.com/prometheus/pricing/, whose stored copy read on 2026-12-06 ends before its
 * price table (it shows the text above and the free tier); the figures are the page's as
 * VictoriaMetrics' "Pricing comparison for Managed Prometheus"
 * (https://victoriametrics.com/blog/managed-prometheus-pricing/, 2022-04-04, read 2026-12-06)
 * quotes them, tier by tier, with a worked example. Check the AWS page before relying on a figure.
 *
 * The free tier's 40 million samples are taken as the month's first samples, out of the first
 * tier. AMP's query price (per billion query samples processed) is not encoded: no readable copy
 * of it was found. The README's query estimate stays inside the free tier and says so; the
 * estimate refuses to price queries beyond it (templates/ampCostDocs.ts).
 */
export const AMP_INGEST_TIERS: readonly { readonly upToSamples: number; readonly usdPer10M: number }[] = [
  { upToSamples: 2_000_000_000, usdPer10M: 0.9 },
  { upToSamples: 252_000_000_000, usdPer10M: 0.35 },
  { upToSamples: Infinity, usdPer10M: 0.16 },
];

/** USD per GB-month (1 GB = 2^30 bytes) of AMP storage beyond the free tier (see AMP_INGEST_TIERS for the source). */
export const AMP_STORAGE_GB_MONTH_USD = 0.03;

/**
 * Bytes a stored sample takes: the pricing page says samples are "typically 1 or 2 bytes" plus
 * their series' metadata (name and labels); the estimate takes the upper figure and leaves the
 * metadata out (a few hundred bytes per series, once, against millions of samples per series).
 */
export const AMP_SAMPLE_BYTES = 2;

/**
 * Days a workspace keeps samples when no retention is configured (infra/amp.ts sets none): AWS's
 * AMP roadmap, aws/amazon-managed-service-for-prometheus-roadmap#2 (an AWS maintainer, 2022):
 * "data older than 150 days is deleted from the workspace". Storage is estimated at that steady
 * state, reached 150 days after the switch.
 */
export const AMP_RETENTION_DAYS = 150;
