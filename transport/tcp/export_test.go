package tcp

import "time"

// PollIdleOf reports the poll bound t chose (Options.PollIdle).
func PollIdleOf(t *Transport) time.Duration { return t.pollIdle }
