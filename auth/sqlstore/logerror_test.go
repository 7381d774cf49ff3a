package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestLogErrorNamesNoAddress: the text a log line gets of a database failure
// says what went wrong, never where: no host, address or port.
func TestLogErrorNamesNoAddress(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("query: %w", &net.DNSError{Err: "no such host", Name: "db.internal"}), "lookup: no such host"},
		{&pgconn.PgError{Message: `relation "gatehouse_usage" does not exist`, Code: "42P01"}, `relation "gatehouse_usage" does not exist (SQLSTATE 42P01)`},
		{errors.New("failed to connect to `user=gh database=keys`: 10.0.3.7:5432 (db.internal:5432): server error: host=db.internal [fd00::7]:5432"),
			"failed to connect to `user=gh database=keys`: [address] ([address]): server error: [address] [address]"},
		{context.DeadlineExceeded, "context deadline exceeded"},
	} {
		if got := logError(c.err); got != c.want {
			t.Errorf("logError(%q) = %q, want %q", c.err, got, c.want)
		}
	}

	// A real driver's error: PostgreSQL's driver dialing a port nobody
	// listens on names the address; the log line does not.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	db, err := Open("postgres://gatehouse@" + addr + "/keys?sslmode=disable&connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = db.PingContext(ctx)
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Ping of a closed port: %v, want an error naming %s", err, addr)
	}
	if got, want := logError(err), "dial: connect: connection refused"; got != want {
		t.Errorf("logError(%q) = %q, want %q", err, got, want)
	}
}
