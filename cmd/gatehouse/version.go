package main

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// versionCommand prints, for `gatehouse version`, the version of the module
// this binary was built from and the Go version that built it, such as
// "gatehouse v0.1.0 go1.26.0". `go install …/cmd/gatehouse@v0.1.0` records
// v0.1.0; a build in this tree records "(devel)", or a pseudo-version when
// the go command stamps it from the checkout.
func versionCommand(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return errors.New("version takes no arguments")
	}
	bi, _ := debug.ReadBuildInfo()
	_, err := io.WriteString(stdout, versionLine(bi))
	return err
}

// versionLine is versionCommand's line for build information bi, which is
// nil in a binary built without module support.
func versionLine(bi *debug.BuildInfo) string {
	version, goVersion := "(unknown)", runtime.Version()
	if bi != nil {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
	}
	return fmt.Sprintf("gatehouse %s %s\n", version, goVersion)
}
