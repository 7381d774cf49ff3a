package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/auth/sqlstore"
	"github.com/gatehouse-go/gatehouse/clientaddr"
	"github.com/gatehouse-go/gatehouse/internal/demo"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// config is the gateway's configuration file: the keys an administrator issued
// (by hash, never in plaintext), the products and where their upstreams are.
// docs/configuration.md shows an example of every field (TestDocsConfigExample
// parses it); without -config the gateway runs demoConfig.
type config struct {
	// Limits apply to a key that sets none of its own.
	Limits struct {
		PerMinute int `json:"per_minute"`
		PerDay    int `json:"per_day"`
	} `json:"limits"`
	// MaxBodyBytes bounds a request body (0: 1 MiB).
	MaxBodyBytes int64 `json:"max_body_bytes,omitzero"`
	// FailedKeyThrottle, if present, limits failed key attempts per client
	// address (see auth.Throttle); absent, nothing is throttled.
	FailedKeyThrottle *throttleConfig `json:"failed_key_throttle,omitzero"`
	Keys              []keyConfig     `json:"keys"`
	Products          []productConfig `json:"products"`
	// Owners are the allowances that all the keys of one owner (a key's
	// "owner") share, by owner: each request spends from its key's limits
	// and from its owner's here. A key whose owner is not listed has only
	// its own.
	Owners map[string]ownerConfig `json:"owners,omitzero"`
}

// ownerConfig is the allowance of all of one owner's keys together.
type ownerConfig struct {
	PerMinute int            `json:"per_minute,omitzero"`
	PerDay    int            `json:"per_day,omitzero"`
	Windows   []windowConfig `json:"windows,omitzero"`
}

// windowConfig is one further window: Limit requests per Per ("1h", "720h").
type windowConfig struct {
	Limit int      `json:"limit"`
	Per   duration `json:"per"`
}

// formats are the values of ?format= that the contract knows
// (docs/contract.md: json, pdf, both): a format_costs entry for another one is
// a typo.
var formats = []string{"json", "pdf", "both"}

type throttleConfig struct {
	Attempts int      `json:"attempts,omitzero"` // at once (0: 10)
	Per      duration `json:"per,omitzero"`      // for all of them to come back (0: 1m)
	// ClientHeader names the header a proxy in front of the gateway writes the
	// client's address to ("X-Forwarded-For"); empty: the connection's address.
	ClientHeader string `json:"client_header,omitzero"`
	// TrustedProxies are the proxies' addresses or prefixes ("10.0.0.0/8");
	// the header is believed only from them. Empty with ClientHeader set: from
	// every peer.
	TrustedProxies []string `json:"trusted_proxies,omitzero"`
}

// throttle returns the throttle the configuration asks for, or nil.
func (c *config) throttle() (*auth.Throttle, error) {
	t := c.FailedKeyThrottle
	if t == nil {
		return nil, nil
	}
	if t.Attempts < 0 || t.Per < 0 {
		return nil, errors.New("config: failed_key_throttle: attempts and per must not be negative")
	}
	clients, err := c.clientAddr()
	if err != nil {
		return nil, err
	}
	return auth.NewThrottle(auth.ThrottleConfig{
		Attempts: t.Attempts,
		Per:      time.Duration(t.Per),
		Client:   clients,
	}), nil
}

// clientAddr returns how the gateway tells a caller's address: the
// failed-key throttle counts by it and the upstreams receive it in
// X-Forwarded-For. Without failed_key_throttle, it is the connection's
// address.
func (c *config) clientAddr() (clientaddr.Source, error) {
	t := c.FailedKeyThrottle
	if t == nil {
		return clientaddr.Source{}, nil
	}
	proxies := make([]netip.Prefix, 0, len(t.TrustedProxies))
	for _, s := range t.TrustedProxies {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return clientaddr.Source{}, fmt.Errorf("config: failed_key_throttle: trusted proxy %q is neither an address nor a prefix", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		proxies = append(proxies, p.Masked())
	}
	return clientaddr.Source{Header: t.ClientHeader, TrustedProxies: proxies}, nil
}

type keyConfig struct {
	ID        string    `json:"id"`
	Name      string    `json:"name,omitzero"`
	Hash      string    `json:"hash"`     // hex SHA-256 of the key, as -mint prints it
	Products  []string  `json:"products"` // slugs, or "*" for every product
	PerMinute int       `json:"per_minute,omitzero"`
	PerDay    int       `json:"per_day,omitzero"`
	Disabled  bool      `json:"disabled,omitzero"`
	ExpiresAt time.Time `json:"expires_at,omitzero"` // RFC 3339; omitted: never
	// Owner names the customer the key belongs to; its keys share the
	// owner's allowance in "owners", if it has one.
	Owner string `json:"owner,omitzero"`
	// Windows are the key's further limits beyond per_minute and per_day.
	Windows []windowConfig `json:"windows,omitzero"`
}

type productConfig struct {
	Slug     string         `json:"slug"`
	Active   bool           `json:"active"`
	Required []string       `json:"required,omitzero"`
	Upstream upstreamConfig `json:"upstream"`
	// Cost is what one request spends from its key's and owner's limits
	// (0: 1).
	Cost int `json:"cost,omitzero"`
	// FormatCosts overrides Cost by ?format= value (json, pdf or both).
	FormatCosts map[string]int `json:"format_costs,omitzero"`
}

type upstreamConfig struct {
	// URL is where the product's requests are sent. A URL that starts with
	// "demo:" names a route of the built-in demo upstream ("demo:/calculate");
	// "inprocess:calculate" is the demo calculation called in this process,
	// with no network hop (and so no upstream translation or health probe).
	URL string `json:"url"`
	// Headers are added to every call: the upstream's own credentials.
	Headers map[string]string `json:"headers,omitzero"`
	// HealthURL is probed by GET /health ("" : URL). "demo:" works here too.
	HealthURL string `json:"health_url,omitzero"`
	// DialTimeout bounds connecting, ResponseHeaderTimeout the wait for the
	// answer's headers, Timeout the whole call, and RetryAfter is the
	// Retry-After of a 503 when the upstream gave none. 0 (absent) is
	// upstream's default: 5 s, 30 s, 60 s and 5 s; never "no bound".
	DialTimeout           duration `json:"dial_timeout,omitzero"`
	ResponseHeaderTimeout duration `json:"response_header_timeout,omitzero"`
	Timeout               duration `json:"timeout,omitzero"`
	RetryAfter            duration `json:"retry_after,omitzero"`
}

// duration is a time.Duration written as a string ("5s", "250ms") in JSON.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"5s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

func (d duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// parseConfig reads and checks a configuration: exactly one JSON object, with
// white space around it only (a file with more after it is refused, not read
// up to the object's end), and unknown fields are errors, so a typo in a field
// name does not silently drop a limit.
func parseConfig(data []byte) (*config, error) {
	var c config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	end := int(dec.InputOffset())
	if rest := bytes.TrimLeft(data[end:], " \t\r\n"); len(rest) > 0 {
		return nil, fmt.Errorf("config: more after the JSON object at byte %d: a configuration is exactly one JSON object", len(data)-len(rest))
	}
	if _, err := c.throttle(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, k := range c.Keys {
		if k.ID == "" {
			return nil, fmt.Errorf("config: key %d has no id", i)
		}
		if seen["key:"+k.ID] {
			return nil, fmt.Errorf("config: key id %q appears twice", k.ID)
		}
		seen["key:"+k.ID] = true
		if _, err := auth.ParseHash(k.Hash); err != nil {
			return nil, fmt.Errorf("config: key %q: %w", k.ID, err)
		}
		if k.PerMinute < 0 || k.PerDay < 0 {
			return nil, fmt.Errorf("config: key %q: per_minute and per_day must not be negative", k.ID)
		}
		if _, err := windowRates(k.Windows); err != nil {
			return nil, fmt.Errorf("config: key %q: %w", k.ID, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Owners)) {
		if _, err := c.Owners[name].rates(); err != nil {
			return nil, fmt.Errorf("config: owner %q: %w", name, err)
		}
	}
	for i, p := range c.Products {
		if p.Slug == "" {
			return nil, fmt.Errorf("config: product %d has no slug", i)
		}
		if seen["product:"+p.Slug] {
			return nil, fmt.Errorf("config: product %q appears twice", p.Slug)
		}
		seen["product:"+p.Slug] = true
		if p.Upstream.URL == "" {
			return nil, fmt.Errorf("config: product %q has no upstream url", p.Slug)
		}
		for _, u := range []struct{ field, raw string }{{"url", p.Upstream.URL}, {"health_url", p.Upstream.HealthURL}} {
			if _, err := url.Parse(u.raw); err != nil {
				return nil, fmt.Errorf("config: product %q: upstream %s: %w", p.Slug, u.field, redactError(err, u.raw))
			}
		}
		if err := checkCost(p.Cost); err != nil {
			return nil, fmt.Errorf("config: product %q: cost: %w", p.Slug, err)
		}
		for _, f := range slices.Sorted(maps.Keys(p.FormatCosts)) {
			if !slices.Contains(formats, f) {
				return nil, fmt.Errorf("config: product %q: format_costs: unknown format %q (the formats are %s)", p.Slug, f, strings.Join(formats, ", "))
			}
			if cost := p.FormatCosts[f]; cost < 1 {
				return nil, fmt.Errorf("config: product %q: format_costs: %s costs %d: a cost is at least 1", p.Slug, f, cost)
			} else if err := checkCost(cost); err != nil {
				return nil, fmt.Errorf("config: product %q: format_costs: %s: %w", p.Slug, f, err)
			}
		}
	}
	return &c, nil
}

// loadConfig reads the configuration file at path; "" is the built-in
// demo's, demoConfig.
func loadConfig(path string) (*config, error) {
	if path == "" {
		return demoConfig(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseConfig(data)
}

// demoConfig returns the built-in configuration: the demo of internal/demo,
// its keys, products, limits and owners (written there only), with every
// product on a route of the demo upstream ("demo:"), called with the demo
// upstream's credential. TestDefaultConfigIsTheDemo checks that it reads
// back the same from the file format.
func demoConfig() *config {
	c := &config{Owners: map[string]ownerConfig{}}
	limits := demo.Limits()
	c.Limits.PerMinute, c.Limits.PerDay = limits.PerMinute, limits.PerDay
	for _, k := range demo.Keys() {
		c.Keys = append(c.Keys, keyConfig{
			ID:        k.ID,
			Name:      k.Name,
			Hash:      k.HashHex(),
			Products:  k.Products,
			PerMinute: k.PerMinute,
			PerDay:    k.PerDay,
			Disabled:  k.Disabled,
			ExpiresAt: k.ExpiresAt,
			Owner:     k.Owner,
			Windows:   windowConfigs(k.Windows),
		})
	}
	for _, p := range demo.Products() {
		c.Products = append(c.Products, productConfig{
			Slug:        p.Slug,
			Active:      p.Active,
			Required:    p.Required,
			Cost:        p.Cost,
			FormatCosts: p.FormatCosts,
			Upstream: upstreamConfig{
				URL:       "demo:" + p.Route,
				HealthURL: "demo:" + p.HealthRoute,
				Headers:   map[string]string{"Authorization": "Bearer " + demo.Secret},
			},
		})
	}
	for owner, rates := range demo.Owners() {
		var o ownerConfig // the inverse of ownerConfig.rates
		var more []ratelimit.Rate
		for _, r := range rates {
			switch r.Period {
			case time.Minute:
				o.PerMinute = r.Limit
			case 24 * time.Hour:
				o.PerDay = r.Limit
			default:
				more = append(more, r)
			}
		}
		o.Windows = windowConfigs(more)
		c.Owners[owner] = o
	}
	return c
}

// configCommand prints, for `gatehouse config`, the built-in configuration
// (demoConfig) in the file format, indented: what the gateway runs without
// -config, as a file to start one from. Tools that configure a gateway
// around the demo (the load tool) read it here rather than building the demo
// again.
func configCommand(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return errors.New("config takes no arguments")
	}
	data, err := json.MarshalIndent(demoConfig(), "", "  ")
	if err != nil {
		return err
	}
	_, err = stdout.Write(append(data, '\n'))
	return err
}

func (c *config) limits() ratelimit.Limits {
	return ratelimit.Limits{PerMinute: c.Limits.PerMinute, PerDay: c.Limits.PerDay}
}

func (c *config) keys() []auth.Key {
	keys := make([]auth.Key, 0, len(c.Keys))
	for _, k := range c.Keys {
		hash, _ := auth.ParseHash(k.Hash)    // checked by parseConfig
		windows, _ := windowRates(k.Windows) // checked by parseConfig
		keys = append(keys, auth.Key{
			ID:        k.ID,
			Hash:      hash,
			Name:      k.Name,
			Products:  k.Products,
			PerMinute: k.PerMinute,
			PerDay:    k.PerDay,
			Disabled:  k.Disabled,
			ExpiresAt: k.ExpiresAt,
			Owner:     k.Owner,
			Windows:   windows,
		})
	}
	return keys
}

func (c *config) products() []auth.Product {
	products := make([]auth.Product, 0, len(c.Products))
	for _, p := range c.Products {
		products = append(products, auth.Product{Slug: p.Slug, Active: p.Active, Required: p.Required, Cost: p.Cost, FormatCosts: p.FormatCosts})
	}
	return products
}

// owners returns each owner's allowance as the rate limiter's windows, for
// gatehouse.Config.Owners; owners without a limit are left out.
func (c *config) owners() map[string][]ratelimit.Rate {
	out := make(map[string][]ratelimit.Rate, len(c.Owners))
	for name, o := range c.Owners {
		if rs, _ := o.rates(); len(rs) > 0 { // checked by parseConfig
			out[name] = rs
		}
	}
	return out
}

// rates returns o's limits as windows (see sqlstore.OwnerLimits.Rates). It returns an error
// for a negative limit, for no limit at all and for a window the rate limiter
// would refuse.
func (o ownerConfig) rates() ([]ratelimit.Rate, error) {
	if o.PerMinute < 0 || o.PerDay < 0 {
		return nil, errors.New("per_minute and per_day must not be negative")
	}
	more, err := windowRates(o.Windows)
	if err != nil {
		return nil, err
	}
	// The key database's rule, so that an owner's allowance reads the same
	// from either.
	out := append(sqlstore.OwnerLimits{PerMinute: o.PerMinute, PerDay: o.PerDay}.Rates(), more...)
	if len(out) == 0 {
		return nil, errors.New("no limit: set per_minute, per_day or windows (or leave the owner out)")
	}
	return out, nil
}

// windowRates returns the file's windows ws as the rate limiter's (nil for
// none), or checkRates's error.
func windowRates(ws []windowConfig) ([]ratelimit.Rate, error) {
	if len(ws) == 0 {
		return nil, nil
	}
	out := make([]ratelimit.Rate, len(ws))
	for i, w := range ws {
		out[i] = ratelimit.Rate{Limit: w.Limit, Period: time.Duration(w.Per)}
	}
	if err := checkRates(out); err != nil {
		return nil, err
	}
	return out, nil
}

// checkRates returns an error naming the first of rs that the rate limiter
// would refuse, or saying why it would refuse the set.
func checkRates(rs []ratelimit.Rate) error {
	for i, r := range rs {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("windows[%d] (%d per %v): %w", i, r.Limit, r.Period, err)
		}
	}
	// The rule for a set of windows is the rate limiter's: no period twice,
	// and none of a minute or a day (per_minute and per_day are those).
	if err := (ratelimit.Limits{PerMinute: 1, PerDay: 1, More: rs}).Validate(); err != nil {
		return fmt.Errorf("windows: %w", err)
	}
	return nil
}

// windowConfigs returns windows as the file writes them: nil for none.
func windowConfigs(rs []ratelimit.Rate) []windowConfig {
	if len(rs) == 0 {
		return nil
	}
	out := make([]windowConfig, len(rs))
	for i, r := range rs {
		out[i] = windowConfig{Limit: r.Limit, Per: duration(r.Period)}
	}
	return out
}

// checkCost returns an error for a cost the rate limiter would refuse.
func checkCost(cost int) error {
	if cost < 0 || cost > ratelimit.MaxCost {
		return fmt.Errorf("%d is outside 0 to %d", cost, ratelimit.MaxCost)
	}
	return nil
}

// resolve turns a "demo:" URL into one on the demo upstream's base URL.
func resolve(url, demoBase string) (string, error) {
	rest, ok := strings.CutPrefix(url, "demo:")
	if !ok {
		return url, nil
	}
	if demoBase == "" {
		return "", errors.New("a demo: upstream is configured but the demo upstream is off (-demo-upstream=false)")
	}
	return demoBase + rest, nil
}

func (u upstreamConfig) header() http.Header {
	h := make(http.Header, len(u.Headers))
	for k, v := range u.Headers {
		h.Set(k, v)
	}
	return h
}
