// Package inputs checks a request's body before a product's handler sees it:
// read within a bound (413), with a JSON Content-Type (415), a JSON object
// whose "inputs" object carries every required field (400), checked as
// encoding/json would decode it, and handed on unchanged. [Middleware] is the
// check and [From] gives the handlers below it the parsed inputs. The
// required fields are by default those of the product auth.Products found,
// so it goes below the product check:
//
//	auth.Products(auth.ProductConfig{Catalog: products})(inputs.Middleware(inputs.Config{})(backend))
//
// docs/inputs.md in the repository has the rules, docs/contract.md every
// message.
package inputs
