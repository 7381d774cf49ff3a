package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/gatehouse-go/gatehouse/auth"
)

// mint creates a key, prints the plaintext once (it is not stored anywhere)
// and the entry to paste into the configuration's "keys" array.
func mint(w io.Writer, o *options, _ *config) error {
	plaintext, k := auth.NewKey()
	var products []string
	for _, p := range strings.Split(o.products, ",") {
		if p = strings.TrimSpace(p); p != "" {
			products = append(products, p)
		}
	}
	entry := keyConfig{
		ID:        k.ID,
		Name:      o.name,
		Hash:      k.HashHex(),
		Products:  products,
		PerMinute: o.perMinute,
		PerDay:    o.perDay,
	}
	line, err := json.Marshal(entry)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "key (shown once, give it to the caller): %s\n", plaintext)
	fmt.Fprintf(w, "config entry (add it to \"keys\", then send SIGHUP):\n%s\n", line)
	return nil
}
