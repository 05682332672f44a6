package dataplane

// SetGeteuid replaces the effective-UID check of Open for a test and
// returns a function that restores it.
func SetGeteuid(f func() int) (restore func()) {
	old := geteuid
	geteuid = f
	return func() { geteuid = old }
}
