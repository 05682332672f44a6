//go:build race

package rocev2_test

// raceEnabled: the race detector slows the engines several times over, so
// load tests shrink and timers stretch (a 17 ms ACK timeout then fires
// while the peer still works through its backlog).
const raceEnabled = true
