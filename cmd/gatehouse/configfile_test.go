package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
)

// TestConfigIsOneJSONValue: a configuration file is exactly one JSON object,
// with white space around it; anything after it is refused with the offset
// where it starts, as any other invalid file is.
func TestConfigIsOneJSONValue(t *testing.T) {
	const valid = `{"keys":[],"products":[]}`
	tests := []struct {
		name, data, wantErr string
	}{
		{"one object", valid, ""},
		{"white space around it", " \n\t" + valid + " \r\n\t ", ""},
		{"an unfinished second value", valid + "{bad", "config: more after the JSON object at byte 25: a configuration is exactly one JSON object"},
		{"a second object", valid + "\n{}", "config: more after the JSON object at byte 26: a configuration is exactly one JSON object"},
		{"a stray brace", valid + "}", "config: more after the JSON object at byte 25: a configuration is exactly one JSON object"},
		{"a word", valid + " true", "config: more after the JSON object at byte 26: a configuration is exactly one JSON object"},
	}
	for _, tt := range tests {
		_, err := parseConfig([]byte(tt.data))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.wantErr {
			t.Errorf("%s: error %q, want %q", tt.name, got, tt.wantErr)
		}
	}
}

// TestReloadRefusesTrailingData: SIGHUP with a file that is a valid
// configuration followed by "{bad" is refused and logged, and the
// configuration in force stays (its key, which the refused file disables,
// still gets 200); at start-up the same file stops the gateway.
func TestReloadRefusesTrailingData(t *testing.T) {
	g, dir, path, plain, upURL := startReloadable(t)
	h := map[string]string{"X-API-Key": plain, "Content-Type": "application/json"}

	hash := auth.HashKey(plain)
	writeConfigWithKey(t, dir, upURL, plain, fmt.Sprintf("%x", hash[:]), true)
	valid, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(valid, "{bad"...), 0o600); err != nil {
		t.Fatal(err)
	}
	g.hup <- nil
	waitFor(t, func() bool { return strings.Contains(g.stderr.String(), "reload failed") })
	wantLog := fmt.Sprintf(`level=ERROR msg="reload failed; the previous configuration stays" err="config: more after the JSON object at byte %d: a configuration is exactly one JSON object"`, len(valid))
	if got := g.stderr.String(); !strings.Contains(got, wantLog+"\n") || strings.Contains(got, "configuration reloaded") {
		t.Errorf("stderr:\n%s\nwant the line ending %s, and no reload", got, wantLog)
	}
	if got := g.call(t, "POST", "/api/calc", h, `{"inputs":{}}`); got.status != 200 || got.body != `{"status":200}` {
		t.Errorf("after the refused reload: %d %q, want the old configuration's 200", got.status, got.body)
	}

	err = run(t.Context(), []string{"-addr", "127.0.0.1:0", "-config", path, "-demo-upstream=false"}, io.Discard, io.Discard, nil, nil)
	want := fmt.Sprintf("config: more after the JSON object at byte %d: a configuration is exactly one JSON object", len(valid))
	if err == nil || err.Error() != want {
		t.Errorf("start-up with the file: %v, want %q", err, want)
	}
}
