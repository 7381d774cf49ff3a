package demo

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServe: the upstream Serve starts answers a product's route on loopback
// with the demo's credential, and nothing listens once it is stopped.
func TestServe(t *testing.T) {
	base, stop, err := Serve()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Errorf("base %q, want a loopback URL", base)
	}
	req, _ := http.NewRequest("POST", base+"/calculate", strings.NewReader(`{"inputs":{"Premium":1200,"Age":42}}`))
	req.Header.Set("Authorization", "Bearer "+Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `{"response_data":{"outputs":{"AnnualPremium":1200,"MonthlyPremium":100}},"status":200}` + "\n"; resp.StatusCode != 200 || string(body) != want {
		t.Errorf("POST /calculate: %d %q, want 200 %q", resp.StatusCode, body, want)
	}
	stop()
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the upstream still answers after stop")
	}
}
