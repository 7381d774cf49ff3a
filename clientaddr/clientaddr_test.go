package clientaddr

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name   string
		s      Source
		remote string
		header []string // X-Forwarded-For lines
		want   string   // "" for the zero Addr
	}{
		{"connection", Source{}, "192.0.2.1:5", []string{"203.0.113.9"}, "192.0.2.1"},
		{"connection without port", Source{}, "192.0.2.1", nil, "192.0.2.1"},
		{"connection ipv6", Source{}, "[2001:db8::1]:5", nil, "2001:db8::1"},
		{"connection ipv6 without port", Source{}, "2001:db8::1", nil, "2001:db8::1"},
		{"connection bracketed ipv6 without port", Source{}, "[2001:db8::1]", nil, "2001:db8::1"},
		{"connection with zone", Source{}, "[fe80::1%eth0]:5", nil, "fe80::1%eth0"},
		{"connection mapped", Source{}, "[::ffff:192.0.2.1]:5", nil, "192.0.2.1"},
		{"not an address", Source{}, "@", nil, ""},
		{"no address", Source{}, "", nil, ""},
		{"host name", Source{}, "localhost:80", nil, ""},
		{"header, every peer trusted", Source{Header: "X-Forwarded-For"}, "192.0.2.1:5", []string{"203.0.113.9, 198.51.100.1"}, "198.51.100.1"},
		{"header missing", Source{Header: "X-Forwarded-For"}, "192.0.2.1:5", nil, "192.0.2.1"},
		{"trusted proxy", Source{Header: "X-Forwarded-For", TrustedProxies: proxies}, "10.1.1.1:5", []string{"203.0.113.9"}, "203.0.113.9"},
		{"untrusted peer's header ignored", Source{Header: "X-Forwarded-For", TrustedProxies: proxies}, "192.0.2.1:5", []string{"203.0.113.9"}, "192.0.2.1"},
		{"chain read from the right", Source{Header: "X-Forwarded-For", TrustedProxies: proxies}, "10.1.1.1:5", []string{"1.1.1.1, 203.0.113.9, 10.2.2.2"}, "203.0.113.9"},
		{"chain across lines", Source{Header: "X-Forwarded-For", TrustedProxies: proxies}, "10.1.1.1:5", []string{"1.1.1.1", "203.0.113.9", "10.2.2.2,10.3.3.3"}, "203.0.113.9"},
		{"all trusted: leftmost", Source{Header: "X-Forwarded-For", TrustedProxies: proxies}, "10.1.1.1:5", []string{"10.9.9.9, 10.2.2.2"}, "10.9.9.9"},
		{"garbage: last trusted hop", Source{Header: "X-Forwarded-For", TrustedProxies: proxies}, "10.1.1.1:5", []string{"203.0.113.9, unknown, 10.2.2.2"}, "10.2.2.2"},
		{"garbage at once: peer", Source{Header: "X-Forwarded-For", TrustedProxies: proxies}, "10.1.1.1:5", []string{"not-an-ip"}, "10.1.1.1"},
		{"empty element: peer", Source{Header: "X-Forwarded-For", TrustedProxies: proxies}, "10.1.1.1:5", []string{"203.0.113.9,"}, "10.1.1.1"},
		{"with ports", Source{Header: "X-Forwarded-For", TrustedProxies: proxies}, "[::1]:5", []string{"[2001:db8::7]:443, 203.0.113.9:80"}, "203.0.113.9"},
		{"bracketed ipv6", Source{Header: "X-Forwarded-For"}, "192.0.2.1:5", []string{"[2001:db8::7]"}, "2001:db8::7"},
		{"mapped proxy", Source{Header: "X-Forwarded-For", TrustedProxies: proxies}, "[::ffff:10.1.1.1]:5", []string{"203.0.113.9"}, "203.0.113.9"},
		{"proxy without an address: its header ignored", Source{Header: "X-Forwarded-For", TrustedProxies: proxies}, "pipe", []string{"203.0.113.9"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.header {
				r.Header.Add("X-Forwarded-For", v)
			}
			got := tt.s.Of(r)
			want := netip.Addr{}
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got != want {
				t.Errorf("Of = %v, want %v", got, want)
			}
		})
	}
}

// FuzzOf: whatever a client writes in the header, Of never panics, and it
// answers either the connection's address or one written in the header; with
// trusted proxies named, a peer outside them is always answered by its own
// address.
func FuzzOf(f *testing.F) {
	f.Add("10.0.0.1:80", "203.0.113.9, 10.2.2.2")
	f.Add("192.0.2.1:1", "[2001:db8::1]:443,,unknown")
	f.Add("[::ffff:10.0.0.1]:1", "::ffff:1.2.3.4%eth0")
	f.Add("pipe", "1.1.1.1")
	f.Fuzz(func(t *testing.T, remote, header string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header["X-Forwarded-For"] = []string{header}
		peer := Source{}.Of(r)
		trusting := Source{Header: "X-Forwarded-For"}.Of(r)
		guarded := Source{Header: "X-Forwarded-For", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}.Of(r)
		inHeader := func(a netip.Addr) bool {
			for item := range strings.SplitSeq(header, ",") {
				if parse(strings.TrimSpace(item)) == a {
					return true
				}
			}
			return false
		}
		if trusting != peer && !inHeader(trusting) {
			t.Fatalf("Of = %v: neither the peer %v nor in the header", trusting, peer)
		}
		if guarded != peer && (!inHeader(guarded) || !netip.MustParsePrefix("10.0.0.0/8").Contains(peer)) {
			t.Fatalf("guarded Of = %v from peer %v", guarded, peer)
		}
	})
}
