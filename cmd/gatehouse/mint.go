package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// mint creates a key, prints the plaintext once (it is not stored anywhere)
// and the entry to paste into the configuration's "keys" array.
func mint(w io.Writer, o *options, _ *config) error {
	products := splitProducts(o.products)
	if len(products) == 0 {
		// A key for every product is a choice to state, not a default to fall into.
		return errors.New("-mint needs -products: the product slugs the key may call, comma-separated, or '*' for every product")
	}
	windows, err := parseWindows(o.windows)
	if err != nil {
		return fmt.Errorf("-windows: %w", err)
	}
	if err := checkRates(windows); err != nil {
		return fmt.Errorf("-windows: %w", err)
	}
	plaintext, k := auth.NewKey()
	entry := keyConfig{
		ID:        k.ID,
		Name:      o.name,
		Hash:      k.HashHex(),
		Products:  products,
		PerMinute: o.perMinute,
		PerDay:    o.perDay,
		Owner:     o.owner,
		Windows:   windowConfigs(windows),
	}
	line, err := json.Marshal(entry)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "key (shown once, give it to the caller): %s\n", plaintext)
	fmt.Fprintf(w, "config entry (add it to \"keys\", then reload: kill -HUP <the pid the server printed>):\n%s\n", line)
	return nil
}

// parseWindows reads the -windows flag: PERIOD=LIMIT items, comma-separated,
// such as "1h=1000,720h=100000" (1,000 requests an hour and 100,000 in 30
// days); PERIOD is a Go duration. Empty or "none" is no window. It checks the
// syntax only; checkRates (or the database) checks the values.
func parseWindows(s string) ([]ratelimit.Rate, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil, nil
	}
	var out []ratelimit.Rate
	for item := range strings.SplitSeq(s, ",") {
		per, limit, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return nil, fmt.Errorf("%q: want PERIOD=LIMIT, such as 1h=1000", item)
		}
		d, err := time.ParseDuration(per)
		if err != nil {
			return nil, fmt.Errorf("%q: period: %w", item, err)
		}
		n, err := strconv.Atoi(limit)
		if err != nil {
			return nil, fmt.Errorf("%q: limit: %w", item, err)
		}
		out = append(out, ratelimit.Rate{Limit: n, Period: d})
	}
	return out, nil
}
