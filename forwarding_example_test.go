package gatehouse_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"

	"github.com/gatehouse-go/gatehouse/clientaddr"
	"github.com/gatehouse-go/gatehouse/upstream"
)

// The upstream learns the caller's address from the gateway, by the same
// trusted-proxy rules the failed-key throttle uses; what the caller claims in
// its own X-Forwarded-For is not believed. This is the snippet of
// docs/forwarding.md.
func Example_forwardingClientAddr() {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("upstream got X-Forwarded-For:", r.Header.Get("X-Forwarded-For"), "query:", r.URL.RawQuery)
	}))
	defer up.Close()
	upstreamURL := up.URL + "/quote?tenant=a"

	// The load balancer in front of the gateway is in 10.0.0.0/8 and appends
	// the address it saw to X-Forwarded-For.
	clients := clientaddr.Source{
		Header:         "X-Forwarded-For",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	}
	p, err := upstream.NewProxy(upstream.Target{
		Name:         "quote",
		URL:          upstreamURL,      // its own ?tenant=a is never overridden
		AllowedQuery: []string{"lang"}, // passed on besides "format"
		ClientAddr:   clients.Of,       // nil: the connection's address
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	defer p.Close()

	// A caller claims 6.6.6.6; the load balancer (10.1.2.3) saw 203.0.113.9.
	r := httptest.NewRequest("POST", "/api/quote?format=pdf&lang=de&tenant=b&debug=1", strings.NewReader(`{"inputs":{}}`))
	r.RemoteAddr = "10.1.2.3:40000"
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.9")
	p.ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// upstream got X-Forwarded-For: 203.0.113.9 query: tenant=a&format=pdf&lang=de
}
