package routers

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	gorilla "github.com/gorilla/mux"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/errorsjson"
)

// chiSlug is the slug as docs/adopting.md reads it in the middleware of
// a chi r.Route group: what is left of the path for the group to route, as
// chi has not matched {productSlug} yet.
func chiSlug(r *http.Request) string {
	return strings.TrimPrefix(chi.RouteContext(r.Context()).RoutePath, "/")
}

// gorillaSlug is the slug as docs/adopting.md reads it in gorilla/mux.
func gorillaSlug(r *http.Request) string { return gorilla.Vars(r)["productSlug"] }

// product answers a request that passed every check with its product's slug.
var product = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.ProductFrom(r.Context())
	io.WriteString(w, p.Slug)
})

// checks returns gatehouse's checks with slug as Products.Slug, the key that
// passes them, and the log they write to.
func checks(t *testing.T, slug func(*http.Request) string) (func(http.Handler) http.Handler, string, *strings.Builder) {
	t.Helper()
	plaintext, key := auth.NewKey()
	key.Products = []string{"quote"}
	log := &strings.Builder{}
	mw, err := gatehouse.Middleware(gatehouse.Config{
		Auth:     auth.Config{Store: auth.NewMemoryStore(key)},
		Products: auth.ProductConfig{Catalog: auth.NewMemoryCatalog(auth.Product{Slug: "quote", Active: true}), Slug: slug},
		Logger:   slog.New(slog.NewTextHandler(log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return mw, plaintext, log
}

// call POSTs to path with key through errorsjson.RequestID(h) and returns the
// answer.
func call(h http.Handler, path, key string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", path, strings.NewReader(`{"inputs":{}}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-ID", "r1")
	rec := httptest.NewRecorder()
	errorsjson.RequestID(h).ServeHTTP(rec, req)
	return rec
}

// answer is what a call should get.
type answer struct {
	status int
	body   string
}

func check(t *testing.T, name string, rec *httptest.ResponseRecorder, want answer) {
	t.Helper()
	ct := rec.Header().Get("Content-Type")
	if rec.Code != want.status || rec.Body.String() != want.body || (want.status >= 400 && ct != "application/json") {
		t.Errorf("%s: %d %q (Content-Type %q), want %d %q", name, rec.Code, rec.Body, ct, want.status, want.body)
	}
}

var (
	ok       = answer{200, "quote"}
	notFound = answer{404, `{"error":"Product not found","request_id":"r1"}` + "\n"}
	internal = answer{500, `{"error":"Internal server error","request_id":"r1"}` + "\n"}
)

// TestChi: in the middleware of a chi r.Route group, chi has not yet matched
// {productSlug}: with Products.Slug read from chi's route context the checks
// answer as the contract says (200, 404); without it every request is the
// operator's error, 500, with one log line naming Products.Slug, never a 404
// that blames the caller. Where chi has matched the route (With, or a Route
// whose own pattern holds the slug), the default r.PathValue serves.
func TestChi(t *testing.T) {
	group := func(mw func(http.Handler) http.Handler) http.Handler {
		r := chi.NewRouter()
		r.Route("/api", func(api chi.Router) {
			api.Use(mw)
			api.Post("/{productSlug}", product)
		})
		return r
	}
	with := func(mw func(http.Handler) http.Handler) http.Handler {
		r := chi.NewRouter()
		r.With(mw).Post("/api/{productSlug}", product)
		return r
	}
	slugGroup := func(mw func(http.Handler) http.Handler) http.Handler {
		r := chi.NewRouter()
		r.Route("/api/{productSlug}", func(p chi.Router) {
			p.Use(mw)
			p.Post("/", product)
		})
		return r
	}
	tests := []struct {
		name    string
		router  func(func(http.Handler) http.Handler) http.Handler
		slug    func(*http.Request) string
		quote   answer // POST /api/quote
		unknown answer // POST /api/nope
	}{
		{"group, Slug from the route context", group, chiSlug, ok, notFound},
		{"group, no Slug", group, nil, internal, internal},
		{"With, no Slug", with, nil, ok, notFound},
		{"Route with the slug, no Slug", slugGroup, nil, ok, notFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, key, log := checks(t, tt.slug)
			h := tt.router(mw)
			check(t, "quote", call(h, "/api/quote", key), tt.quote)
			if tt.quote.status == 500 {
				lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
				if len(lines) != 1 || !strings.Contains(lines[0], "level=ERROR") ||
					!strings.Contains(lines[0], "set ProductConfig.Slug (gatehouse.Config.Products.Slug)") {
					t.Errorf("log after one request:\n%s\nwant one error line naming gatehouse.Config.Products.Slug", log)
				}
			} else if log.Len() != 0 {
				t.Errorf("log: %s, want nothing", log)
			}
			check(t, "nope", call(h, "/api/nope", key), tt.unknown)
		})
	}
}

// TestGorillaMux: gorilla/mux keeps its variables in mux.Vars, which its
// middleware reads once the route has matched: with Products.Slug reading
// them, 200 and 404; without, 500.
func TestGorillaMux(t *testing.T) {
	for _, tt := range []struct {
		name        string
		slug        func(*http.Request) string
		quote, nope answer
	}{
		{"Slug from mux.Vars", gorillaSlug, ok, notFound},
		{"no Slug", nil, internal, internal},
	} {
		mw, key, _ := checks(t, tt.slug)
		r := gorilla.NewRouter()
		r.Handle("/api/{productSlug}", product).Methods("POST")
		r.Use(mw)
		check(t, tt.name+": quote", call(r, "/api/quote", key), tt.quote)
		check(t, tt.name+": nope", call(r, "/api/nope", key), tt.nope)
	}
}
