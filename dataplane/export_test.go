package dataplane

// SetGeteuid replaces the effective-UID check of Open for a test and
// returns a function that restores it.
func SetGeteuid(f func() int) (restore func()) {
	old := geteuid
	geteuid = f
	return func() { geteuid = old }
}

// TakeSpinSlot and ReleaseSpinSlot expose the process-wide bound on
// busy-polling receivers.
func TakeSpinSlot() bool { return takeSpinSlot() }

// NoteSpinEnv re-reads ONET_BUSY_POLL, as opening a BusyPollAuto port does.
func NoteSpinEnv()     { noteSpinEnv() }
func ReleaseSpinSlot() { spinners.Add(-1) }

// AddBusyPorts changes the count of open busy-polling ports.
func AddBusyPorts(n int32) { busyPorts.Add(n) }
