// Package pytests drives the Python package opennetworks (python/) from
// `go test`: it builds libonet.so with go build -buildmode=c-shared into a
// temporary directory, runs the unit tests under python/tests with
// /usr/bin/python3 -m unittest, and, as root, runs the lab scripts
// (python/tests/lab_*.py) with one Python process per lab host inside the
// host's network namespace, in labs of 2 and 4 hosts: every ProcessGroup
// method of the torch.distributed backend "onet", DDP training with "onet"
// against "gloo", the NumPy Communicator, and errors across the boundary.
// TestBindingOverhead times allreduce through Python, through Go and
// through gloo on the same hosts.
//
// The package has no non-test code; tests skip, saying why, when
// /usr/bin/python3, numpy, torch, gcc or root are missing.
package pytests
