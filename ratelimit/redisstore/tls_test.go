package redisstore

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/redistest"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/redis/go-redis/v9"
)

// TestRedissPassword: a real redis-server that serves TLS (with a certificate
// of a CA made for the test) and requires a password. A store on a client of
// rediss://:PASSWORD@127.0.0.1:PORT/0 that trusts the CA (its TLS
// configuration's RootCAs) and bounds replies (BoundReplies) decides: 200,
// 200, then refused, at 2 a minute. So does NewFromURL's store on that URL,
// in a process of its own whose SSL_CERT_FILE is the CA (the system's roots
// are read once a process). A wrong password fails Ping and Take with Redis's
// WRONGPASS, whose text holds neither password; plain TCP to the TLS port
// fails.
func TestRedissPassword(t *testing.T) {
	const password = "tls-s3cret-pw"
	s := redistest.StartTLS(t, password)
	ctx := context.Background()
	store := func(url string) *Store {
		t.Helper()
		o, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		if o.TLSConfig != nil {
			o.TLSConfig.RootCAs = s.CAPool
		}
		o.Dialer = BoundReplies(o.Dialer, o.TLSConfig)
		o.ContextTimeoutEnabled, o.DialerRetries, o.MaxRetries = true, 1, 1
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = exactWait, exactWait, exactWait, exactWait
		c := redis.NewClient(o)
		t.Cleanup(func() { c.Close() })
		return exactStore(c, Options{})
	}
	url := "rediss://:" + password + "@" + s.TLSAddr + "/0"
	good := store(url)
	if err := good.Ping(ctx); err != nil {
		t.Fatalf("Ping over TLS with the password: %v", err)
	}
	charge := ratelimit.Charge{Key: "tls", Limits: ratelimit.Limits{PerMinute: 2, PerDay: 10}}
	for i, want := range []struct {
		allowed   bool
		remaining int
	}{{true, 1}, {true, 0}, {false, 0}} {
		dec, err := good.Take(ctx, charge, time.Time{})
		if err != nil || dec.Allowed != want.allowed || dec.Minute.Remaining != want.remaining || (dec.RetryAfter > 0) == want.allowed {
			t.Fatalf("decision %d: allowed %v, remaining %d, RetryAfter %v, %v; want %v, %d", i+1, dec.Allowed, dec.Minute.Remaining, dec.RetryAfter, err, want.allowed, want.remaining)
		}
	}

	bad := store("rediss://:wrong-pw@" + s.TLSAddr + "/0")
	_, takeErr := bad.Take(ctx, charge, time.Time{})
	for what, err := range map[string]error{"Ping": bad.Ping(ctx), "Take": takeErr} {
		if err == nil || !strings.Contains(err.Error(), "WRONGPASS") ||
			strings.Contains(err.Error(), "wrong-pw") || strings.Contains(err.Error(), password) {
			t.Errorf("%s with a wrong password: %v; want Redis's WRONGPASS, without a password", what, err)
		}
	}
	if err := store("redis://:" + password + "@" + s.TLSAddr + "/0").Ping(ctx); err == nil {
		t.Error("Ping in plain TCP on the TLS port succeeded")
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestRedissFromURLChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+s.CAFile, "GATEHOUSE_REDISS_URL="+url)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "--- PASS: TestRedissFromURLChild") {
		t.Errorf("NewFromURL(rediss://…) with SSL_CERT_FILE, in a process of its own: %v\n%s", err, out)
	}
}

// TestRedissFromURLChild is TestRedissPassword's child process: NewFromURL's
// store on GATEHOUSE_REDISS_URL decides. It skips without that variable.
func TestRedissFromURLChild(t *testing.T) {
	url := os.Getenv("GATEHOUSE_REDISS_URL")
	if url == "" {
		t.Skip("run by TestRedissPassword")
	}
	s := exactURLStore(t, url, Options{})
	dec, err := s.Take(context.Background(), ratelimit.Charge{Key: "tls-url", Limits: ratelimit.Limits{PerMinute: 2, PerDay: 10}}, time.Time{})
	if err != nil || !dec.Allowed || dec.Minute.Remaining != 1 {
		t.Fatalf("Take: %+v, %v; want allowed with 1 remaining", dec, err)
	}
}
