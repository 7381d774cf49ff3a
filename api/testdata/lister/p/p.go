// Package p is a package for the lister's test: a name of each kind, and
// names that a listing leaves out.
package p

import (
	"context"
	"io"
)

// Kind is an enumeration.
type Kind uint8

// The kinds; B and C repeat A's type.
const (
	A Kind = iota
	B
	C
	d
)

// Untyped has no type in the source.
const Untyped = 3

// Typed vars, an untyped one, and an unexported one.
var (
	ErrX     error
	Sum      [32]byte
	Default  = New()
	internal int
)

// T is a struct with exported, unexported and embedded fields.
type T struct {
	Name, Alias string
	count       int
	Handler     func(ctx context.Context, b []byte) (n int, err error)
	io.Reader
	hidden
}

type hidden struct{ Promoted int }

// Method is listed; its receiver's type is exported.
func (t *T) Method(ctx context.Context, r rune) (int, error) { return 0, nil }

// Value is a method on a value receiver.
func (t T) Value() string { return t.Name }

func (t *T) unexported() {}

// Hidden's methods are not listed: hidden is not exported.
func (hidden) Hidden() {}

// I is an interface with an embedded one.
type I interface {
	io.Closer
	Do(n int, more ...string) bool
	undo()
}

// Set is generic.
type Set[K comparable, V any] struct{ M map[K]V }

// Get is a method of a generic type.
func (s *Set[K, V]) Get(k K) (V, bool) { v, ok := s.M[k]; return v, ok }

// Map is a generic func.
func Map[T, U any](ts []T, f func(T) U) []U { return nil }

// Alias is an alias.
type Alias = map[string]int

// Func is a func type.
type Func func(w io.Writer, p []byte) error

// New returns a T.
func New() *T { return nil }

func helper() {}
