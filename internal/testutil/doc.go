// Package testutil holds helpers shared by the project's tests: skipping with
// a reason when a privilege or kernel feature is missing, and unique names for
// resources that concurrently running test packages create.
package testutil
