package x

// X is in an internal package.
func X() {}
