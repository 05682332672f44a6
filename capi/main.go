package main

import "runtime"

// main is required of a c-shared package main and never runs.
func main() {}

// goVersion is the Go release the library was built with ("go1.26.0").
func goVersion() string { return runtime.Version() }
