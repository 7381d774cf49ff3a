package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/gatehouse-go/gatehouse/auth"
)

// mint creates a key, prints the plaintext once (it is not stored anywhere)
// and the entry to paste into the configuration's "keys" array.
func mint(w io.Writer, o *options, _ *config) error {
	products := splitProducts(o.products)
	if len(products) == 0 {
		// A key for every product is a choice to state, not a default to fall into.
		return errors.New("-mint needs -products: the product slugs the key may call, comma-separated, or '*' for every product")
	}
	plaintext, k := auth.NewKey()
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
	fmt.Fprintf(w, "config entry (add it to \"keys\", then reload: kill -HUP <the pid the server printed>):\n%s\n", line)
	return nil
}
