// Package labtest builds a lab for one test and removes it when the test
// ends, also when it fails.
package labtest
