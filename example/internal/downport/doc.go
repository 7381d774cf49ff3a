// Package downport gives tests and the load tool an upstream that is down: a
// loopback address that refuses every connection for as long as it is held.
package downport
