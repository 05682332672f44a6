package stack

import "sync"

// ResetLaunchedProcs lets LaunchedProcs act again (each test run).
func ResetLaunchedProcs() { launchedOnce = sync.Once{} }
