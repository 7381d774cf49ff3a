package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/serving"
)

// startHostile serves the demo gateway with the real server settings but short
// read timeouts, so that slow clients are cut off within the test. Only
// clients that are meant to be cut off use it: on a busy machine any client
// may be slower than these timeouts.
func startHostile(t *testing.T) string {
	t.Helper()
	return startServer(t, func(srv *http.Server) {
		srv.ReadHeaderTimeout = 200 * time.Millisecond
		srv.ReadTimeout = 500 * time.Millisecond
	})
}

// clientDeadline bounds how long the tests' raw clients wait for the server:
// far longer than any server timeout they wait out (startHostile's, the real
// ones in internal/serving), so that a busy machine, not the server, is never
// what ends the wait.
const clientDeadline = time.Minute

// startServer serves the demo gateway, its upstreams down, with the real
// server settings as tune changes them, and returns its address.
func startServer(t *testing.T, tune func(*http.Server)) string {
	t.Helper()
	cfg, err := loadConfig("")
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
	conn.SetDeadline(time.Now().Add(clientDeadline))
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

// TestHostileInput: malformed, oversized and slow requests get their JSON
// error, or are cut off by the server's timeouts, and the server serves
// everyone else meanwhile. The requests that must be answered go to a server
// with the real settings (internal/serving), whose timeouts a slow machine
// does not reach; the clients that trickle go to startHostile's, whose short
// timeouts must cut them off before the client's own, far longer, deadline.
func TestHostileInput(t *testing.T) {
	addr := startServer(t, func(*http.Server) {})
	hostile := startHostile(t)
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

	// A client that trickles its headers is cut off by ReadHeaderTimeout: the
	// server ends the connection (it may answer 408 first) long before the
	// client's deadline would.
	trickleHeaders := func(addr string) net.Conn {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		io.WriteString(conn, "POST /api/premium-calculator HTTP/1.1\r\nHost: x\r\n")
		return conn
	}
	// A client that sends headers but trickles its body is cut off by
	// ReadTimeout: a JSON 400, or a connection ended without an answer.
	trickleBody := func(addr string) net.Conn {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		io.WriteString(conn, "POST /api/premium-calculator HTTP/1.1\r\nHost: x\r\nX-API-Key: "+full+"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
		return conn
	}

	// While a client of each kind holds a connection to the real server, it
	// serves everyone else. Its upstreams (at 127.0.0.1:1) are all down:
	// degraded, still serving.
	trickleHeaders(addr)
	trickleBody(addr)
	status, body, err := raw(t, addr, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	want := `{"status":"degraded","upstreams":{"broken-calculator":"down","misconfigured-calculator":"down","overloaded-calculator":"down","premium-calculator":"down"}}` + "\n"
	if err != nil || status != "200 OK" || body != want {
		t.Errorf("while slow clients hold connections: %s %q %v, want 200 OK %q", status, body, err, want)
	}

	conn := trickleHeaders(hostile)
	conn.SetReadDeadline(time.Now().Add(clientDeadline))
	// io.ReadAll ends at the server's close (EOF, or a reset): only the
	// client's own deadline means the server held on.
	if b, err := io.ReadAll(conn); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a client trickling headers: %v after %q, want the server to end the connection", err, b)
	} else if len(b) > 0 {
		t.Logf("the server answered a trickling client before closing: %q", b)
	}

	slow := trickleBody(hostile)
	slow.SetReadDeadline(time.Now().Add(clientDeadline))
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a client trickling its body: %v, want the server to answer or end the connection", err)
	}
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), `"error"`) {
			t.Errorf("slow body: %d %q, want a JSON 400 or a cut connection", resp.StatusCode, b)
		}
	}
}
