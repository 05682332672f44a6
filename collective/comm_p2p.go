package collective

import "fmt"

// Point-to-point Send and Recv: the call's one message, under the
// caller's tag (comm_exec.go's exec.tag maps it to the user tag space).

func init() {
	register(&algorithm{name: "direct", kind: OpSend, run: directSend})
	register(&algorithm{name: "direct", kind: OpRecv, run: directRecv})
}

func directSend(x *exec) error {
	s, err := x.isend(x.peer, 0, x.send)
	if err != nil {
		return err
	}
	return x.wait(s)
}

func directRecv(x *exec) error {
	r, err := x.irecv(x.peer, 0, x.recv)
	if err != nil {
		return err
	}
	if err := x.wait(r); err != nil {
		return fmt.Errorf("tag %d: %w", x.call.tag, err)
	}
	return nil
}
