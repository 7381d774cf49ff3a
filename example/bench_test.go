package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/example/internal/demo"
)

// BenchmarkInProcessProduct: the whole example stack in front of the demo
// calculation, answered in process, against the calculation alone; the
// difference is what the stack costs a request, with no network in between.
//
//	cd example && go test -run '^$' -bench InProcessProduct -benchmem -count 6 .
func BenchmarkInProcessProduct(b *testing.B) {
	plain, k := auth.NewKey()
	cfg, err := parseConfig([]byte(fmt.Sprintf(`{"limits":{"per_minute":100000000,"per_day":1000000000},
		"keys": [{"id": "key_test", "hash": %q, "products": ["*"]}],
		"products": [{"slug": "local", "active": true, "required": ["Premium", "Age"], "upstream": {"url": "inprocess:calculate"}}]}`, k.HashHex())))
	if err != nil {
		b.Fatal(err)
	}
	g, err := newGateway(b.Context(), cfg, &options{}, "", slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"inputs":{"Premium":1200,"Age":60}}`)
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"gateway", g.Handler()}, {"bare", http.HandlerFunc(demo.Calculate)}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("POST", "/api/local", bytes.NewReader(body))
				r.Header.Set("Authorization", "Bearer "+plain)
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				tc.h.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatal(w.Code, w.Body)
				}
			}
		})
	}
}
