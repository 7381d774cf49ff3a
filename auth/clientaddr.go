// This file holds ClientAddr: which address a request comes from, the
// connection's or, behind trusted proxies, the one a header names.

package auth

import (
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddr says where a request's client address comes from. The zero value
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
type ClientAddr struct {
	// Header is the header a proxy in front of the server writes the client's
	// address to: "X-Forwarded-For", "X-Real-IP", "CF-Connecting-IP"…
	// Empty: the connection's address.
	Header string
	// TrustedProxies are the addresses of the proxies whose Header is
	// believed. Empty, with Header set, trusts the header from every peer:
	// right only when nothing can reach the server except through the proxy.
	TrustedProxies []netip.Prefix
}

// Of returns the client address of r, or the zero Addr if r.RemoteAddr is
// not an address (as in a request that did not come from a connection).
func (c ClientAddr) Of(r *http.Request) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if c.Header == "" || (len(c.TrustedProxies) > 0 && !c.trusted(peer)) {
		return peer
	}
	values := r.Header.Values(c.Header)
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
			a := parseAddr(strings.TrimSpace(item))
			if !a.IsValid() {
				return last
			}
			if len(c.TrustedProxies) == 0 || !c.trusted(a) {
				return a
			}
			last = a
		}
	}
	return last
}

func (c ClientAddr) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range c.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseAddr parses "addr", "addr:port" or "[addr]:port"; it returns the zero
// Addr for anything else.
func parseAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
