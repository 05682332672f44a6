package collectivetest

import (
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
)

func TestMemTransport(t *testing.T) {
	TestTransport(t, func(t *testing.T, n int) []collective.Transport { return NewGroup(n, GroupOptions{}) })
}

func TestMemTransportRendezvousDelay(t *testing.T) {
	TestTransport(t, func(t *testing.T, n int) []collective.Transport {
		return NewGroup(n, GroupOptions{Rendezvous: true, Delay: 50 * time.Microsecond})
	})
}
