//go:build !race

package incastlab_test

const raceEnabled = false
