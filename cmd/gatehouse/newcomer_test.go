package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBannerPrintsPidAndReload: the banner names this process's own pid (under
// go run, the pid of go run would be the wrong one: SIGHUP kills go run and
// orphans the server) and how to stop it; with -config, the exact command that
// reloads the file, and without, no reload: the built-in demo has nothing to
// reload.
func TestBannerPrintsPidAndReload(t *testing.T) {
	pid := os.Getpid()

	g := start(t)
	lines := strings.Split(g.stdout.String(), "\n")
	want := fmt.Sprintf("pid %d: stop with Ctrl-C or kill %d", pid, pid)
	if len(lines) < 2 || lines[1] != want {
		t.Errorf("without -config, the banner's second line is not %q:\n%s", want, g.stdout.String())
	}

	path := filepath.Join(t.TempDir(), "gateway.json")
	if err := os.WriteFile(path, []byte(`{"keys": [], "products": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	g = start(t, "-config", path, "-demo-upstream=false")
	want = fmt.Sprintf("gatehouse listening on %s\npid %d: reload the configuration with  kill -HUP %d  (stop: Ctrl-C or kill %d)\n", g.base, pid, pid, pid)
	if got := g.stdout.String(); got != want {
		t.Errorf("with -config, the banner is\n%q\nwant\n%q", got, want)
	}
}

// TestMintRequiresProducts: -mint without -products is refused with a message
// that names the flag, instead of minting a key for every product; '*' is the
// explicit way to ask for that.
func TestMintRequiresProducts(t *testing.T) {
	tests := []struct {
		name         string
		args         []string
		wantErr      string
		wantProducts []string
	}{
		{"no -products", []string{"-mint", "-name", "Alice"}, "-mint needs -products", nil},
		{"empty -products", []string{"-mint", "-products", " , "}, "-mint needs -products", nil},
		{"explicit star", []string{"-mint", "-products", "*"}, "", []string{"*"}},
		{"one product", []string{"-mint", "-products", "premium-calculator"}, "", []string{"premium-calculator"}},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := run(context.Background(), tt.args, &out, io.Discard, nil, nil)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want one containing %q", tt.name, err, tt.wantErr)
			}
			if out.Len() != 0 {
				t.Errorf("%s: printed %q, want nothing (no key minted)", tt.name, out.String())
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		var entry keyConfig
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &entry); err != nil {
			t.Fatalf("%s: entry %q: %v", tt.name, lines[len(lines)-1], err)
		}
		if strings.Join(entry.Products, ",") != strings.Join(tt.wantProducts, ",") {
			t.Errorf("%s: products %q, want %q", tt.name, entry.Products, tt.wantProducts)
		}
	}
}
