package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{"password", "redis://user:hunter2@127.0.0.1:6379/0", "redis://user:xxxxx@127.0.0.1:6379/0"},
		{"password only", "redis://:hunter2@127.0.0.1:6379/0", "redis://:xxxxx@127.0.0.1:6379/0"},
		{"user only", "postgres://user@db.internal:5432/keys", "postgres://user@db.internal:5432/keys"},
		{"no user info", "http://calc.internal:8080/v1?a=b@c", "http://calc.internal:8080/v1?a=b@c"},
		{"not a URL", "sqlite:keys.db", "sqlite:keys.db"},
		{"empty", "", ""},
		{"unparsable port", "redis://user:hunter2@127.0.0.1:notaport/0", "redis://user:xxxxx@127.0.0.1:notaport/0"},
		{"unparsable escape", "redis://user:hun%zzter2@127.0.0.1:6379/0", "redis://user:xxxxx@127.0.0.1:6379/0"},
		{"slash in the password", "postgres://user:hun/ter2@db.internal/keys", "postgres://user:xxxxx@db.internal/keys"},
		{"at in the password", "redis://user:hun@ter2@127.0.0.1:6379/0", "redis://user:xxxxx@127.0.0.1:6379/0"},
		{"no scheme", "user:hunter2@127.0.0.1:6379", "user:xxxxx@127.0.0.1:6379"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.raw); got != tt.want {
			t.Errorf("%s: redactURL(%q) = %q, want %q", tt.name, tt.raw, got, tt.want)
		}
	}
}

// TestURLErrorsRedacted: a flag or configuration URL that carries a password
// and cannot be used gets an error that names it with the password as xxxxx,
// at start-up (and so in a reload's log line, which shows the same error).
func TestURLErrorsRedacted(t *testing.T) {
	config := func(upstream string) string {
		path := filepath.Join(t.TempDir(), "gateway.json")
		cfg := fmt.Sprintf(`{"keys":[],"products":[{"slug":"calc","active":true,"required":[],"upstream":%s}]}`, upstream)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"-redis, bad port", []string{"-redis", "redis://user:hunter2@127.0.0.1:notaport/0"},
			`-redis: redisstore: parse "redis://user:xxxxx@127.0.0.1:notaport/0": invalid port ":notaport" after host`},
		{"-redis, bad escape in the password", []string{"-redis", "redis://:hunter2%zz@127.0.0.1:6379/0"},
			`-redis: redisstore: parse "redis://:xxxxx@127.0.0.1:6379/0": invalid URL escape in the password`},
		{"-db, bad port", []string{"-db", "postgres://user:hunter2@127.0.0.1:notaport/keys"},
			"-db: sqlstore: migrate: cannot parse `postgres://user:xxxxx@127.0.0.1:notaport/keys`: invalid port"},
		{"upstream url, bad port", []string{"-config", config(`{"url":"http://gw:hunter2@calc.internal:notaport/v1"}`), "-demo-upstream=false"},
			`config: product "calc": upstream url: parse "http://gw:xxxxx@calc.internal:notaport/v1": invalid port ":notaport" after host`},
		{"upstream health_url, bad port", []string{"-config", config(`{"url":"http://calc.internal/v1","health_url":"http://gw:hunter2@calc.internal:notaport/healthz"}`), "-demo-upstream=false"},
			`config: product "calc": upstream health_url: parse "http://gw:xxxxx@calc.internal:notaport/healthz": invalid port ":notaport" after host`},
	}
	for _, tt := range tests {
		// A gateway that starts after all is stopped at once: run returns nil.
		ctx, cancel := context.WithCancel(t.Context())
		err := run(ctx, append([]string{"-addr", "127.0.0.1:0"}, tt.args...), io.Discard, io.Discard, nil, func(string) { cancel() })
		cancel()
		if err == nil {
			t.Errorf("%s: started", tt.name)
			continue
		}
		if got := err.Error(); got != tt.want || strings.Contains(got, "hunter2") {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
		if strings.Contains(fmt.Sprintf("%+v", err), "hunter2") || errors.Unwrap(err) != nil && strings.Contains(fmt.Sprint(errors.Unwrap(err)), "hunter2") {
			t.Errorf("%s: the password is in the error chain", tt.name)
		}
	}
}
