package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/example/internal/serving"
)

// startHostile serves the demo gateway with the real server settings but short
// read timeouts, so that slow clients are cut off within the test.
func startHostile(t *testing.T) string {
	t.Helper()
	return startServer(t, func(srv *http.Server) {
		srv.ReadHeaderTimeout = 200 * time.Millisecond
		srv.ReadTimeout = 500 * time.Millisecond
	})
}

// startServer serves the demo gateway, its upstreams down, with the real
// server settings as tune changes them, and returns its address.
func startServer(t *testing.T, tune func(*http.Server)) string {
	t.Helper()
	cfg, err := parseConfig(defaultConfig)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	gw, err := newGateway(context.Background(), cfg, &options{}, "http://127.0.0.1:1", logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	srv := newServer(gw.Handler(), logger)
	tune(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// raw sends a raw request and returns the status line and body ("" and the
// error if the server cut the connection before answering); see rawResponse.
func raw(t *testing.T, addr, request string) (string, string, error) {
	t.Helper()
	resp, body, err := rawResponse(t, addr, request)
	if err != nil {
		return "", "", err
	}
	return resp.Status, body, nil
}

// rawResponse sends a raw request and returns the response and its body (nil,
// "" and the error if the server cut the connection before answering). It
// writes while it reads, as a real client does: a server that answers before
// the request is all sent (413 for a body over the bound) stops reading and
// closes, and a client that insisted on writing everything first would see its
// write reset and never read the answer that was there.
func rawResponse(t *testing.T, addr, request string) (*http.Response, string, error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	wrote := make(chan error, 1)
	go func() {
		_, err := io.WriteString(conn, request)
		wrote <- err
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		conn.Close() // ends the write
		if werr := <-wrote; werr != nil {
			return nil, "", werr
		}
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	conn.Close()
	<-wrote // the write may have failed once the server closed: the answer was read
	if err != nil {
		return nil, "", err
	}
	return resp, string(b), nil
}

func TestHostileInput(t *testing.T) {
	addr := startHostile(t)
	full := key("full")
	post := func(headers, body string) string {
		return "POST /api/premium-calculator HTTP/1.1\r\nHost: x\r\nX-API-Key: " + full + "\r\nX-Request-ID: h\r\n" + headers +
			"Content-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body
	}
	tests := []struct {
		name       string
		request    string
		wantStatus string
		wantBody   string
	}{
		{"truncated JSON", post("Content-Type: application/json\r\n", `{"inputs":{"Premium":12`), "400 Bad Request",
			`{"error":"Request body is not valid JSON","request_id":"h"}` + "\n"},
		{"deep nesting", post("Content-Type: application/json\r\n", `{"inputs":`+strings.Repeat("[", 1000)+strings.Repeat("]", 1000)+`}`), "400 Bad Request",
			`{"error":"inputs must be a JSON object","request_id":"h"}` + "\n"},
		{"deep nesting past the decoder's limit", post("Content-Type: application/json\r\n", `{"inputs":{"a":`+strings.Repeat("[", 20_000)+strings.Repeat("]", 20_000)+`}}`), "400 Bad Request",
			`{"error":"Request body is not valid JSON","request_id":"h"}` + "\n"},
		{"wrong content type", post("Content-Type: text/xml\r\n", `<inputs/>`), "415 Unsupported Media Type",
			`{"error":"Content-Type must be application/json","request_id":"h"}` + "\n"},
		{"body over the bound", post("Content-Type: application/json\r\n", `{"inputs":{"Premium":"`+strings.Repeat("x", 1<<20)+`"}}`), "413 Request Entity Too Large",
			`{"error":"Request body too large","request_id":"h"}` + "\n"},
		// Far more than the socket buffers hold: the server answers and closes
		// long before the client could finish writing.
		{"body far over the bound", post("Content-Type: application/json\r\n", `{"inputs":{"Premium":"`+strings.Repeat("x", 16<<20)+`"}}`), "413 Request Entity Too Large",
			`{"error":"Request body too large","request_id":"h"}` + "\n"},
	}
	for _, tt := range tests {
		status, body, err := raw(t, addr, tt.request)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if status != tt.wantStatus || body != tt.wantBody {
			t.Errorf("%s: %s %q, want %s %q", tt.name, status, body, tt.wantStatus, tt.wantBody)
		}
	}

	// Headers over MaxHeaderBytes: net/http answers 431 itself, before any handler.
	status, _, err := raw(t, addr, "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", serving.MaxHeaderBytes+8192)+"\r\n\r\n")
	if err == nil && status != "431 Request Header Fields Too Large" {
		t.Errorf("huge headers: %s, want 431 or a cut connection", status)
	}

	// A client that trickles its headers is cut off by ReadHeaderTimeout.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /api/premium-calculator HTTP/1.1\r\nHost: x\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	n, err := conn.Read(make([]byte, 1))
	if err == nil && n > 0 {
		// The server may answer 408 before closing; either way it does not wait.
		t.Logf("server answered a trickling client before closing")
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Errorf("a client trickling headers held the connection for %v", waited)
	}

	// A client that sends headers but trickles its body is cut off by ReadTimeout.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "POST /api/premium-calculator HTTP/1.1\r\nHost: x\r\nX-API-Key: "+full+"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	start = time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), `"error"`) {
			t.Errorf("slow body: %d %q, want a JSON 400 or a cut connection", resp.StatusCode, b)
		}
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Errorf("a client trickling its body held the connection for %v", waited)
	}

	// And the server still serves everyone else.
	// Its upstreams (at 127.0.0.1:1) are all down: degraded, still serving.
	status, body, err := raw(t, addr, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	want := `{"status":"degraded","upstreams":{"broken-calculator":"down","misconfigured-calculator":"down","overloaded-calculator":"down","premium-calculator":"down"}}` + "\n"
	if err != nil || status != "200 OK" || body != want {
		t.Errorf("after the hostile requests: %s %q %v, want 200 OK %q", status, body, err, want)
	}
}
