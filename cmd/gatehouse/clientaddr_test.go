package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
)

// TestClientAddrToUpstream: over real sockets, the upstream's X-Forwarded-For
// is the caller's address as the configuration's client settings tell it:
// the client header's address when the peer (127.0.0.1 here) is a trusted
// proxy, the connection's address otherwise, never the caller's claim.
func TestClientAddrToUpstream(t *testing.T) {
	tests := []struct {
		name     string
		throttle string // the failed_key_throttle field, "" for none
		want     string // X-Forwarded-For at the upstream
	}{
		{"trusted proxy", `"failed_key_throttle": {"client_header": "X-Forwarded-For", "trusted_proxies": ["127.0.0.1"]},`, "203.0.113.7"},
		{"untrusted peer", `"failed_key_throttle": {"client_header": "X-Forwarded-For", "trusted_proxies": ["10.0.0.0/8"]},`, "127.0.0.1"},
		{"no client header", "", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu  sync.Mutex
				got []string
			)
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				got = append(got, r.Header.Get("X-Forwarded-For"))
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"status":200}`))
			}))
			defer up.Close()
			plain, k := auth.NewKey()
			cfg := fmt.Sprintf(`{%s
				"keys": [{"id": "key_test", "hash": %q, "products": ["calc"]}],
				"products": [{"slug": "calc", "active": true, "required": [], "upstream": {"url": %q}}]
			}`, tt.throttle, k.HashHex(), up.URL)
			path := filepath.Join(t.TempDir(), "gateway.json")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			g := start(t, "-config", path, "-demo-upstream=false")
			// The caller claims 6.6.6.6; the proxy (if trusted) appended 203.0.113.7.
			h := map[string]string{"X-API-Key": plain, "Content-Type": "application/json", "X-Forwarded-For": "6.6.6.6, 203.0.113.7"}
			if r := g.call(t, "POST", "/api/calc", h, `{"inputs":{}}`); r.status != 200 {
				t.Fatalf("call: %d %s", r.status, r.body)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("upstream saw X-Forwarded-For %q, want [%q]", got, tt.want)
			}
		})
	}
}
