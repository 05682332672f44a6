// Package bpf is placeholder.
package bpf
