//go:build ignore

package p

// Ignored is in a file the default build context does not compile.
func Ignored() {}
