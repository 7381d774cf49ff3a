package promgatehouse

import (
	"fmt"
	"math"
	"testing"

	"github.com/gatehouse-go/gatehouse/auth"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// TestEveryResultHasALabel: every value of auth.Result and of
// ratelimit.Result, that is every value whose String is a Go name rather
// than "Result(N)", has a label of its own in its table, and no other value
// has one. TestMetricsCountWhatTheLayersDecide holds the labels' text.
func TestEveryResultHasALabel(t *testing.T) {
	checkLabels[auth.Result](t, keyResultLabels[:])
	checkLabels[ratelimit.Result](t, rateLimitResultLabels[:])
}

// checkLabels checks labels, indexed by R, against every value of R.
func checkLabels[R interface {
	~uint8
	fmt.Stringer
}](t *testing.T, labels []string) {
	t.Helper()
	seen := map[string]R{}
	for v := range math.MaxUint8 + 1 {
		r := R(v)
		defined := r.String() != fmt.Sprintf("Result(%d)", v)
		label := ""
		if v < len(labels) {
			label = labels[v]
		}
		switch {
		case defined && label == "":
			t.Errorf("%T %v has no label", r, r)
		case !defined && label != "":
			t.Errorf("%T(%d), no result, has the label %q", r, v, label)
		case label != "":
			if o, ok := seen[label]; ok {
				t.Errorf("%T %v and %v share the label %q", r, o, r, label)
			}
			seen[label] = r
		}
	}
	if len(seen) == 0 {
		t.Errorf("no %T has a label", R(0))
	}
}
