// Package sub is a package below p.
package sub

// S is listed under its own import path.
var S string
