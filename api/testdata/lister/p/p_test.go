package p

// InTest is in a test file.
func InTest() {}
