package inputs

import (
	"context"
	"testing"

	"github.com/gatehouse-go/gatehouse/internal/refused"
)

// TestNilHandlerRefused: a nil handler to wrap is refused when the stack is
// built, with a panic naming the middleware.
func TestNilHandlerRefused(t *testing.T) {
	refused.Panic(t, "inputs: Middleware of a nil handler", func() { Middleware(Config{})(nil) })
}

func TestFromEmptyContext(t *testing.T) {
	if m, ok := From(context.Background()); ok || m != nil {
		t.Errorf("From(empty) = %v, %v", m, ok)
	}
}
