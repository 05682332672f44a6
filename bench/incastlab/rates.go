package incastlab

import (
	"time"

	"github.com/opennetworks/onetdp/rdma/rocev2"
)

// rateSampler records a QP's allowed rate every 10 ms until stop closes.
type rateSampler struct {
	done    chan struct{}
	samples []float64
}

func (s *rateSampler) run(d *rocev2.Device, qpn uint32, stop <-chan struct{}) {
	defer close(s.done)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if st, ok := d.QPFlowStats(qpn); ok && st.Rate > 0 {
				s.samples = append(s.samples, st.Rate)
			}
		}
	}
}

func (s *rateSampler) wait() {
	if s.done != nil {
		<-s.done
	}
}

func (s *rateSampler) mean() float64 {
	s.wait()
	if len(s.samples) == 0 {
		return 0
	}
	var t float64
	for _, v := range s.samples {
		t += v
	}
	return t / float64(len(s.samples))
}

func (s *rateSampler) last() float64 {
	s.wait()
	if len(s.samples) == 0 {
		return 0
	}
	return s.samples[len(s.samples)-1]
}
