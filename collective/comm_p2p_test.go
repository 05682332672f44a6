package collective_test

import (
	"context"
	"testing"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
)

func TestP2P(t *testing.T) {
	comms := collectivetest.Comms(t, 3, collectivetest.GroupOptions{Rendezvous: true}, collective.Options{IgnoreEnv: true})
	ctx := context.Background()
	// Both sides send first, then receive: non-blocking, so no deadlock
	// even on a rendezvous transport.
	h0, err := comms[0].ISend(ctx, []byte("from 0"), 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := comms[2].ISend(ctx, []byte("from 2"), 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	b0, b2 := make([]byte, 6), make([]byte, 6)
	if err := comms[0].Recv(ctx, b0, 2, 5); err != nil {
		t.Fatal(err)
	}
	if err := comms[2].Recv(ctx, b2, 0, 5); err != nil {
		t.Fatal(err)
	}
	if err := h0.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h2.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if string(b0) != "from 2" || string(b2) != "from 0" {
		t.Fatalf("got %q %q", b0, b2)
	}
	if err := comms[1].Send(ctx, nil, 1, 0); err == nil {
		t.Fatal("send to self: no error")
	}
	if err := comms[1].Send(ctx, nil, 0, collective.MaxUserTag+1); err == nil {
		t.Fatal("tag above MaxUserTag: no error")
	}
}
