package system

import "errors"

// Source names one kind of system figure; it is the value of the source
// label of onet_system_source_present.
type Source string

// The sources this package reads.
const (
	SourceCPU             Source = "cpu"
	SourceNUMA            Source = "numa"
	SourceNIC             Source = "nic_numa"
	SourceGPU             Source = "gpu"
	SourceNVLink          Source = "nvlink"
	SourcePower           Source = "power"
	SourceMemoryBandwidth Source = "memory_bandwidth"
)

// Sources lists every Source in a fixed order.
var Sources = []Source{SourceCPU, SourceNUMA, SourceNIC, SourceGPU, SourceNVLink, SourcePower, SourceMemoryBandwidth}

// ErrAbsent is matched (errors.Is) by every error meaning "this host does
// not offer this figure", as opposed to a failure reading one it offers.
var ErrAbsent = errors.New("source absent")

// AbsentError says which source is absent and why.
type AbsentError struct {
	Source Source
	Reason string
}

func (e *AbsentError) Error() string { return string(e.Source) + " absent: " + e.Reason }

// Is makes errors.Is(err, ErrAbsent) true.
func (e *AbsentError) Is(target error) bool { return target == ErrAbsent }

func absent(src Source, reason string) error { return &AbsentError{Source: src, Reason: reason} }

// absentReason returns the reason of an AbsentError in err's chain, or
// err's text for any other error (a source that failed to read is absent
// from the snapshot too, with the failure as its reason).
func absentReason(err error) string {
	var ae *AbsentError
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return err.Error()
}
