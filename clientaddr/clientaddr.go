// Package clientaddr tells which address a request comes from: the
// connection's or, behind trusted proxies, the one a proxy's header names.
//
//	clients := clientaddr.Source{
//		Header:         "X-Forwarded-For",
//		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
//	}
//	addr := clients.Of(r) // the zero Addr if r did not come from an IP address
//
// It imports nothing but the standard library; see [Source] for why it is a
// package of its own.
package clientaddr

import (
	"net/http"
	"net/netip"
	"strings"
)

// Source says where a request's client address comes from. The zero value
// takes the connection's address (r.RemoteAddr).
//
// Behind a proxy every connection comes from the proxy, so name the header in
// which it passes the client's address on. A client can write that header
// too, so a value is believed only as far as it was written by a trusted proxy:
// the header is read only on a connection from TrustedProxies, and a list (as
// X-Forwarded-For is, each proxy appending the address it saw) is read from
// the right, skipping the trusted proxies' own addresses; the first address
// that is not theirs is the client. A value that does not parse is not
// believed, and the address of the last trusted hop is used instead.
//
// Source lives in a package of its own because three layers need the same
// answer: auth's failed-key throttle counts attempts by it, ratelimit's
// ByClient keys buckets on it, and upstream sends it in X-Forwarded-For.
// None of the three imports another, so the one parse sits below them all,
// and a client is throttled, limited and forwarded as the same address.
type Source struct {
	// Header is the header a proxy in front of the server writes the client's
	// address to: "X-Forwarded-For", "X-Real-IP", "CF-Connecting-IP"…
	// Empty: the connection's address.
	Header string
	// TrustedProxies are the addresses of the proxies whose Header is
	// believed. Empty, with Header set, trusts the header from every peer:
	// right only when nothing can reach the server except through the proxy.
	TrustedProxies []netip.Prefix
}

// Of returns the client address of r, IPv4-mapped IPv6 addresses as their
// IPv4 address, or the zero Addr if r.RemoteAddr is not an address (as in a
// request that did not come from a connection, or came over a Unix socket).
// r.RemoteAddr may be "addr", "addr:port" or "[addr]:port", and so may each
// element of Header.
func (s Source) Of(r *http.Request) netip.Addr {
	peer := parse(r.RemoteAddr)
	if s.Header == "" || (len(s.TrustedProxies) > 0 && !s.trusted(peer)) {
		return peer
	}
	values := r.Header.Values(s.Header)
	last := peer // the nearest hop known to be honest
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for v != "" {
			var item string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				v, item = v[:j], v[j+1:]
			} else {
				v, item = "", v
			}
			a := parse(strings.TrimSpace(item))
			if !a.IsValid() {
				return last
			}
			if len(s.TrustedProxies) == 0 || !s.trusted(a) {
				return a
			}
			last = a
		}
	}
	return last
}

func (s Source) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parse parses "addr", "addr:port" or "[addr]:port"; it returns the zero
// Addr for anything else.
func parse(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
