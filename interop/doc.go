// Package interop checks what gatehouse writes against the libraries that
// read it, in a module of its own that is never published, so that no
// published module depends on them: the Stripe export of
// [sqlstore.WriteUsageStripe] against the parameters of
// github.com/stripe/stripe-go/v82, with no network.
package interop

import _ "github.com/gatehouse-go/gatehouse/auth/sqlstore" // the module under check
