// Package lathist is a lock-free latency histogram whose buckets are those
// of a Prometheus native histogram of schema 2 (four buckets per power of
// two, each at most 19 % wide), over durations in seconds: bucket k holds
// durations d with 2^((k-1)/4) < d/s <= 2^(k/4). Layers below telemetry
// (rdma/rocev2) record into it with a few atomic adds and no allocation;
// telemetry turns a Snapshot into a native histogram, classic buckets and
// percentiles at scrape time.
//
// It is a leaf: it imports only the standard library, so any package of
// the module may use it without breaking the layering.
package lathist
