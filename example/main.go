// Command example is gatehouse's demo: the whole stack, in front of a demo
// product service, with demo keys and products, on a loopback address.
//
//	go run ./example                   # serve on 127.0.0.1:8080
//	go run ./example -addr 127.0.0.1:0 # on any free port
//
// It starts the demo upstream (internal/demo) on a loopback port of its own,
// and puts gatehouse.New in front of it: the demo keys in an
// auth.MemoryStore, the demo products in an auth.MemoryCatalog, rate limits
// in this process's memory, one upstream.Proxy per product, and an
// upstream.Health that probes them for GET /health. It prints the demo keys
// and serves until Ctrl-C or SIGTERM. The README's walkthrough calls it with
// curl.
//
// Configuration files, key databases, Redis, metrics and the admin page are
// the operator's gateway's: cmd/gatehouse.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/internal/cli"
	"github.com/gatehouse-go/gatehouse/internal/demo"
	"github.com/gatehouse-go/gatehouse/internal/serving"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/upstream"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

// run serves the demo until ctx is done, then shuts the server down. ready,
// if not nil, is called with the address it listens on.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(addr string)) error {
	fs := cli.FlagSet("example", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	if err := cli.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil)) // a line per request

	// The product service behind the gateway: in a deployment, yours.
	base, stopUpstream, err := demo.Serve()
	if err != nil {
		return err
	}
	defer stopUpstream()

	// The key store holds each key's record, its hash and what it may do;
	// never the key itself.
	keys := auth.NewMemoryStore()
	for _, k := range demo.Keys() {
		keys.Put(k.Key)
	}

	// Each product: its record in the catalog, and a proxy to its upstream,
	// which adds the upstream's own credential (the caller's key never goes
	// on) and translates the upstream's failures (502, 503).
	catalog := auth.NewMemoryCatalog()
	proxies := map[string]*upstream.Proxy{}
	handlers := map[string]http.Handler{}
	probed := map[string]upstream.Target{} // what /health probes: the active products
	for _, p := range demo.Products() {
		catalog.Put(p.Product)
		t := upstream.Target{
			Name:      p.Slug,
			URL:       base + p.Route,
			HealthURL: base + p.HealthRoute,
			Header:    http.Header{"Authorization": {"Bearer " + demo.Secret}},
			Logger:    logger,
		}
		proxy, err := upstream.NewProxy(t)
		if err != nil {
			return err
		}
		defer proxy.Close()
		proxies[p.Slug], handlers[p.Slug] = proxy, proxy
		if p.Active {
			probed[p.Slug] = t
		}
	}
	var products gatehouse.Upstreams // the handler of each request, by its product
	products.Set(handlers)
	health := upstream.NewHealth(upstream.HealthConfig{
		Logger: logger,
		Open:   func(name string) bool { return proxies[name].Open() }, // an open breaker is named too
	})
	health.Set(probed)

	owners := demo.Owners()
	h, err := gatehouse.New(gatehouse.Config{
		Auth:      auth.Config{Store: keys},
		RateLimit: ratelimit.Config{Limits: demo.Limits()}, // in memory; for a key whose record sets none
		Owners:    func(_ context.Context, owner string) []ratelimit.Rate { return owners[owner] },
		Products:  auth.ProductConfig{Catalog: catalog},
		Product:   &products,
		Health:    health,
		Logger:    logger,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := serving.NewServer(h) // timeouts against slow clients
	listening := ln.Addr().String()
	fmt.Fprintf(stdout, "gatehouse demo listening on http://%s (stop: Ctrl-C)\n", listening)
	demo.PrintKeys(stdout, listening)
	if ready != nil {
		ready(listening)
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Let the requests under way finish, for up to 10 s.
	stopping, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(stopping); err != nil {
		return err
	}
	<-served // http.ErrServerClosed
	return nil
}
