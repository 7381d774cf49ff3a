package errorsjson

import (
	"testing"

	"github.com/gatehouse-go/gatehouse/internal/refused"
)

// TestConfigRefused: each middleware refuses a nil handler when it wraps
// it, as http.Handle does, rather than panicking on the first request.
func TestConfigRefused(t *testing.T) {
	refused.Panic(t, "errorsjson: RequestID of a nil handler", func() { RequestID(nil) })
	refused.Panic(t, "errorsjson: Rewrite of a nil handler", func() { Rewrite(nil) })
	refused.Panic(t, "errorsjson: CanonicalPath of a nil handler", func() { CanonicalPath(nil) })
	refused.Panic(t, "errorsjson: Recover of a nil handler", func() { Recover(nil)(nil) })
	refused.Panic(t, "errorsjson: MaxHeaderBytes of a nil handler", func() { MaxHeaderBytes(1024)(nil) })
	refused.Panic(t, "errorsjson: MaxHeaderBytes of a nil handler", func() { MaxHeaderBytes(0)(nil) })
}
