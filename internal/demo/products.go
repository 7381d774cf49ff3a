package demo

import "github.com/gatehouse-go/gatehouse/auth"

// Product is one of the demo products: what the catalog holds, and where on
// [Upstream] its calls and its health probe go.
type Product struct {
	auth.Product
	// Route is the path of Upstream that answers the product's calls, and
	// HealthRoute the one its health probe GETs: a failing product's own
	// route, so that /health names it.
	Route, HealthRoute string
}

// Products returns the demo products: premium-calculator, which computes a
// quote; retired-calculator, inactive (404 like an unknown product); and
// three whose upstream fails, each in its own way (see [Upstream]).
func Products() []Product {
	return []Product{
		{auth.Product{Slug: "premium-calculator", Active: true, Required: []string{"Premium", "Age"}}, "/calculate", "/healthz"},
		{auth.Product{Slug: "retired-calculator", Active: false, Required: []string{"Premium"}, Cost: 5, FormatCosts: map[string]int{"pdf": 10}}, "/calculate", "/healthz"},
		{auth.Product{Slug: "misconfigured-calculator", Active: true}, "/unauthorized", "/unauthorized"},
		{auth.Product{Slug: "overloaded-calculator", Active: true}, "/overloaded", "/overloaded"},
		{auth.Product{Slug: "broken-calculator", Active: true}, "/broken", "/broken"},
	}
}
