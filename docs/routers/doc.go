// Package routers holds no code of its own: its tests run gatehouse's checks
// in the routers that docs/adopting.md shows them in (chi, gorilla/mux),
// asserting the answers docs/contract.md gives. It is a module of its own so that
// the core module depends on neither router.
package routers
