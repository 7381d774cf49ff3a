package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/gatehouse-go/gatehouse/errorsjson"
	"github.com/gatehouse-go/gatehouse/promgatehouse"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/upstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The admin listener (-admin-addr): GET /metrics for Prometheus, GET / a live
// page of every key's allowance and usage today, the upstreams' health and
// breakers and the requests per second by status, and GET /state.json and
// GET /usage.json, what the page polls.
// It is off by default, and refuses an address that is not loopback unless
// -admin-public says otherwise: it names keys (by id) and upstreams, which is
// for an operator, not for the internet. It answers only requests whose Host
// is loopback by name, an IP address, or a name of -admin-hosts: a web page
// that an operator's browser opens cannot read it through a name of its own
// rebound to this address (DNS rebinding).

//go:embed admin
var adminFiles embed.FS

// admin is what the admin listener shows: the Prometheus metrics and the
// gateway's own state, read without making traffic.
type admin struct {
	g       *gateway
	reg     *prometheus.Registry
	metrics *promgatehouse.Metrics
	rates   rates
	store   ratelimit.Store  // the rate-limit store, peeked for the bars
	limits  ratelimit.Limits // the default limits of a key that sets none
	now     func() time.Time
	keys    atomic.Pointer[[]auth.Key] // the configuration's keys, sorted by ID
	// list reads the keys of the key database (-db), which the gateway then
	// serves instead of the configuration's; nil without -db.
	list func(context.Context) ([]sqlstore.Key, error)
	// usage is where the keys' usage of the day is read from; nil without
	// -db.
	usage   *adminUsage
	maxKeys int        // the most keys a state or a usage shows
	hosts   adminHosts // the names of -admin-hosts
}

// maxPageKeys is the most keys the page shows: a state peeks each key's
// windows in the rate-limit store (a Redis round trip each, with -redis) once
// a second while a page is open, and a key database can hold any number.
const maxPageKeys = 500

// keyListTimeout bounds the key database's listing for one state, so that a
// database that does not answer cannot pile up the page's polls.
const keyListTimeout = 2 * time.Second

// Key sources of a state: where the keys the gateway serves, and the page
// shows, come from.
const (
	keysFromConfig   = "configuration"
	keysFromDatabase = "database"
)

// msgKeysUnavailable is a state's keys_error when the key database cannot be
// listed; the database's own error, which may name its address, is not shown.
const msgKeysUnavailable = "the key database does not answer: its keys cannot be shown"

// showKeys makes keys the ones the page shows without a key database: the
// configuration's, as Apply gives them to the key store. Nil-safe: without an
// admin page it does nothing.
func (a *admin) showKeys(keys []auth.Key) {
	if a == nil {
		return
	}
	keys = slices.Clone(keys)
	sortByID(keys)
	a.keys.Store(&keys)
}

// listFrom makes the page show the keys of the key database kdb, read at
// each state, in place of the configuration's: with -db they are the keys
// the gateway serves; and their usage, which kdb's recorder flushes every
// usageFlush. It must be called before the admin listener starts. Nil-safe:
// without an admin page it does nothing.
func (a *admin) listFrom(kdb *keyDB, usageFlush time.Duration) {
	if a == nil {
		return
	}
	a.list = func(ctx context.Context) ([]sqlstore.Key, error) { return kdb.admin.List(ctx, "") }
	a.usage = &adminUsage{db: kdb.db, every: usageFlush}
	if kdb.usage != nil {
		a.usage.recorder = kdb.usage
	}
}

// servedKeys returns the keys the gateway serves, sorted by ID, and where they
// come from: the key database's with -db, else the configuration's.
func (a *admin) servedKeys(ctx context.Context) (keys []auth.Key, source string, err error) {
	if a.list == nil {
		if p := a.keys.Load(); p != nil {
			keys = *p
		}
		return keys, keysFromConfig, nil
	}
	ctx, cancel := context.WithTimeout(ctx, keyListTimeout)
	defer cancel()
	records, err := a.list(ctx)
	if err != nil {
		return nil, keysFromDatabase, err
	}
	keys = make([]auth.Key, len(records))
	for i, r := range records {
		keys[i] = r.Key
	}
	sortByID(keys)
	return keys, keysFromDatabase, nil
}

func sortByID(keys []auth.Key) {
	slices.SortFunc(keys, func(x, y auth.Key) int { return strings.Compare(x.ID, y.ID) })
}

// watch sets g up to report to an admin page, if o asks for one: g's Observe
// functions then feed its metrics and request rates. It must be called before
// g.Apply, so that the proxies get their Observe function.
func (g *gateway) watch(o *options) error {
	if o.adminAddr == "" {
		return nil
	}
	a := &admin{g: g, reg: prometheus.NewRegistry(), now: time.Now, maxKeys: maxPageKeys, hosts: o.adminHosts}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := promgatehouse.New(a.reg, promgatehouse.Config{Known: g.knownProduct})
	if err != nil {
		return err
	}
	a.metrics = m
	a.rates.now = a.now
	g.admin = a
	g.observeKey, g.observeRateLimit, g.observeUpstream = m.ObserveKey, m.ObserveRateLimit, m.ObserveUpstream
	g.observeRequest = func(e gatehouse.RequestEvent) {
		m.ObserveRequest(e)
		a.rates.add(e.Status)
	}
	return nil
}

// knownProduct reports whether slug is a product of the current
// configuration: the bound of the metrics' product labels.
func (g *gateway) knownProduct(slug string) bool {
	s := g.current.Load()
	return s != nil && s.products[slug] != nil
}

// limitStore returns the rate-limit store the gateway uses (store, or a
// MemoryStore of its own for nil: what the rate limiter would make), and
// keeps it, with the default limits, for the admin page to peek.
func (g *gateway) limitStore(store ratelimit.Store, limits ratelimit.Limits) ratelimit.Store {
	if store == nil {
		store = ratelimit.NewMemoryStore(ratelimit.MemoryConfig{})
	}
	if g.admin != nil {
		g.admin.store, g.admin.limits = store, limits
	}
	return store
}

// serveAdmin starts the admin listener of o.adminAddr, prints its address,
// and returns the function that stops it. The listener stops too when ctx is
// done.
func serveAdmin(ctx context.Context, o *options, g *gateway, stdout io.Writer, logger *slog.Logger) (stop func(), err error) {
	if g.admin == nil {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", o.adminAddr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	if a, ok := ln.Addr().(*net.TCPAddr); !o.adminPublic && (!ok || !a.IP.IsLoopback()) {
		ln.Close()
		return nil, fmt.Errorf("admin listener: %s is not a loopback address; add -admin-public to serve the admin page beyond this machine", o.adminAddr)
	}
	srv := newServer(g.admin.handler(), logger)
	go srv.Serve(ln)
	fmt.Fprintf(stdout, "admin page on http://%s/ (metrics at /metrics)\n", ln.Addr())
	stopped := context.AfterFunc(ctx, func() { srv.Close() })
	return func() {
		stopped()
		srv.Close()
	}, nil
}

// msgMisdirected is the error of a request whose Host the admin listener does
// not answer (421 Misdirected Request).
const msgMisdirected = "Misdirected request: the admin listener does not answer this host name (add it with -admin-hosts)"

// handler serves the admin page, its state and the metrics, to a request
// whose Host it answers (see answers); any other gets 421.
func (a *admin) handler() http.Handler {
	static, _ := fs.Sub(adminFiles, "admin")
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /state.json", a.serveState)
	mux.HandleFunc("GET /usage.json", a.serveUsage)
	mux.Handle("GET /", http.FileServerFS(static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.answers(r.Host) {
			errorsjson.Write(w, r, http.StatusMisdirectedRequest, msgMisdirected)
			return
		}
		// The page is the operator's: no frame, no script or style from
		// anywhere but here.
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

// answers reports whether the admin listener answers a request for host, a
// Host header with or without its port: an IP address, "localhost", or a name
// of -admin-hosts, in any case and with or without a final dot. A page of
// another origin that reaches the listener does so by a name that resolves
// to this address, which it does not answer. An IP address is answered: a
// page whose origin is the address itself is served by this listener.
func (a *admin) answers(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if inner, ok := strings.CutPrefix(host, "["); ok {
		host = strings.TrimSuffix(inner, "]")
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	name := hostName(host)
	return name == "localhost" || a.hosts[name]
}

// hostName is the form of a host name that answers compares: lower case,
// without a final dot.
func hostName(s string) string {
	return strings.TrimSuffix(strings.ToLower(s), ".")
}

// adminHosts is the -admin-hosts flag: the host names the admin listener
// answers besides IP addresses and localhost, such as the name an operator's
// proxy or DNS gives it. A name is kept as hostName gives it.
type adminHosts map[string]bool

func (h *adminHosts) String() string {
	if h == nil {
		return ""
	}
	return strings.Join(slices.Sorted(maps.Keys(*h)), ",")
}

// Set reads comma-separated host names.
func (h *adminHosts) Set(s string) error {
	next := adminHosts{}
	for _, raw := range strings.Split(s, ",") {
		raw = strings.TrimSpace(raw)
		name := hostName(raw)
		switch {
		case name == "":
			return errors.New("an empty host name")
		case strings.ContainsAny(name, ":/[]@?#%\\ \t"):
			return fmt.Errorf("%q is not a host name (no port, scheme or path)", raw)
		}
		next[name] = true
	}
	*h = next
	return nil
}

// adminState is the JSON of /state.json.
type adminState struct {
	// Keys are the keys the gateway serves, sorted by ID: the first maxKeys
	// of KeysTotal.
	Keys      []keyState `json:"keys"`
	KeysTotal int        `json:"keys_total"`
	// KeySource is where they come from: keysFromConfig or keysFromDatabase.
	KeySource string `json:"key_source"`
	// KeysError, when the key database cannot be listed, says so; Keys is
	// then empty.
	KeysError string          `json:"keys_error,omitzero"`
	Upstreams []upstreamState `json:"upstreams"`
	Rates     []statusRate    `json:"rates"`
	// Peek is false when the rate-limit store cannot be read without
	// spending (it does not implement ratelimit.Peeker): the bars are empty.
	Peek bool `json:"peek"`
}

type keyState struct {
	ID     string      `json:"id"`
	Name   string      `json:"name"`
	Active bool        `json:"active"`
	Minute windowState `json:"minute"`
	Day    windowState `json:"day"`
}

type windowState struct {
	Limit     int   `json:"limit"`
	Remaining int   `json:"remaining"`
	ResetMs   int64 `json:"reset_ms"`
}

// Health states of the page besides upstream.Health's: the gateway neither
// probes nor calls an inactive product's upstream, and probes an active one
// only when /health asks.
const (
	healthInactive  = "inactive"
	healthNotProbed = "not probed"
)

type upstreamState struct {
	Name    string `json:"name"`
	Health  string `json:"health"`
	Breaker string `json:"breaker"`
}

type statusRate struct {
	Status    int     `json:"status"`
	PerSecond float64 `json:"per_second"`
}

// state reads the gateway's state: each served key's windows peeked from the
// store, each upstream's last probe and breaker, the request rates.
func (a *admin) state(ctx context.Context) adminState {
	now := a.now()
	st := adminState{Keys: []keyState{}, Upstreams: []upstreamState{}}
	peeker, canPeek := a.store.(ratelimit.Peeker)
	st.Peek = canPeek
	keys, source, err := a.servedKeys(ctx)
	st.KeySource, st.KeysTotal = source, len(keys)
	if err != nil {
		st.KeysError = msgKeysUnavailable
	}
	keys = keys[:min(len(keys), a.maxKeys)]
	for _, k := range keys {
		ks := keyState{ID: k.ID, Name: k.Name, Active: k.Err(now) == nil}
		limits := a.limitsOf(k)
		ks.Minute.Limit, ks.Day.Limit = limits.PerMinute, limits.PerDay
		if canPeek {
			if d, err := peeker.Peek(ctx, ratelimit.Charge{Key: k.LimitID(), Limits: limits}, now); err == nil {
				ks.Minute = windowState{d.Minute.Limit, d.Minute.Remaining, d.Minute.Reset.Milliseconds()}
				ks.Day = windowState{d.Day.Limit, d.Day.Remaining, d.Day.Reset.Milliseconds()}
			}
		}
		st.Keys = append(st.Keys, ks)
	}
	health := a.g.health.States()
	if s := a.g.current.Load(); s != nil {
		for name, p := range s.proxies {
			breaker := upstream.BreakerClosed
			if p.Open() {
				breaker = upstream.BreakerOpen
			}
			h := health[name]
			switch {
			case s.products[name] != nil && !s.products[name].Active:
				h = healthInactive
			case h == "":
				h = healthNotProbed
			}
			st.Upstreams = append(st.Upstreams, upstreamState{Name: name, Health: h, Breaker: breaker})
		}
	}
	slices.SortFunc(st.Upstreams, func(x, y upstreamState) int { return strings.Compare(x.Name, y.Name) })
	st.Rates = a.rates.perSecond()
	return st
}

// limitsOf is k's minute and day allowance: its own, or the defaults for a
// window it does not set.
func (a *admin) limitsOf(k auth.Key) ratelimit.Limits {
	limits := ratelimit.Limits{PerMinute: k.PerMinute, PerDay: k.PerDay}
	if limits.PerMinute == 0 {
		limits.PerMinute = a.limits.PerMinute
	}
	if limits.PerDay == 0 {
		limits.PerDay = a.limits.PerDay
	}
	return limits
}

func (a *admin) serveState(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(a.state(r.Context()))
}

// rates counts requests by status in one-second slots, for the page's
// requests per second. Its memory is bounded: rateSlots slots, each at most
// one count per status code.
type rates struct {
	now   func() time.Time
	mu    sync.Mutex
	slots [rateSlots]rateSlot
}

const (
	rateSlots  = 8 // seconds kept
	rateWindow = 5 // complete seconds averaged
)

type rateSlot struct {
	sec      int64
	byStatus map[int]int
}

func (r *rates) add(status int) {
	sec := r.now().Unix()
	r.mu.Lock()
	s := &r.slots[sec%rateSlots]
	if s.sec != sec || s.byStatus == nil {
		s.sec, s.byStatus = sec, make(map[int]int, len(s.byStatus))
	}
	s.byStatus[status]++
	r.mu.Unlock()
}

// perSecond is the mean rate of each status over the last rateWindow
// complete seconds, by status.
func (r *rates) perSecond() []statusRate {
	sec := r.now().Unix()
	sums := map[int]int{}
	r.mu.Lock()
	for _, s := range r.slots {
		if s.sec < sec && s.sec >= sec-rateWindow {
			for status, n := range s.byStatus {
				sums[status] += n
			}
		}
	}
	r.mu.Unlock()
	out := make([]statusRate, 0, len(sums))
	for status, n := range sums {
		out = append(out, statusRate{status, float64(n) / rateWindow})
	}
	slices.SortFunc(out, func(x, y statusRate) int { return x.Status - y.Status })
	return out
}
