package clientaddr_test

import (
	"fmt"
	"net/http/httptest"
	"net/netip"

	"github.com/gatehouse-go/gatehouse/clientaddr"
)

// Behind a load balancer at 10.0.0.0/8, the client is the address it
// appended to X-Forwarded-For, not the one the caller claimed; a caller that
// reaches the server directly is its connection's address, whatever it writes.
func ExampleSource() {
	clients := clientaddr.Source{
		Header:         "X-Forwarded-For",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	}
	viaProxy := httptest.NewRequest("GET", "/", nil)
	viaProxy.RemoteAddr = "10.1.2.3:40000"
	viaProxy.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.9")
	direct := httptest.NewRequest("GET", "/", nil)
	direct.RemoteAddr = "198.51.100.7:50000"
	direct.Header.Set("X-Forwarded-For", "6.6.6.6")

	fmt.Println(clients.Of(viaProxy))
	fmt.Println(clients.Of(direct))
	fmt.Println(clientaddr.Source{}.Of(viaProxy)) // the zero value: the connection
	// Output:
	// 203.0.113.9
	// 198.51.100.7
	// 10.1.2.3
}
