// Command exported prints the number of exported names of each package of
// gatehouse's published modules (top-level names and methods, as
// api.CountModule counts them), run from the api directory:
//
//	cd api && go run ./cmd/exported
package main

import (
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/gatehouse-go/gatehouse/api"
)

func main() {
	for _, m := range api.Published() {
		counts, err := api.CountModule("..", m)
		if err != nil {
			fmt.Fprintln(os.Stderr, "exported:", err)
			os.Exit(1)
		}
		for _, p := range slices.Sorted(maps.Keys(counts)) {
			if counts[p] > 0 {
				fmt.Printf("%-60s %3d\n", p, counts[p])
			}
		}
	}
}
