// Package downport gives tests and the load tool an upstream that is down: a
// loopback address that refuses every connection for as long as it is held. It
// is internal to the repository's modules: the load tool (benchmarks/load)
// imports it, and so does internal/redistest for a Redis that is down.
package downport
