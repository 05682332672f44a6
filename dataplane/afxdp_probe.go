package dataplane

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// probeZeroCopy reports whether an AF_XDP socket can bind to (ifindex,
// queue) in zero-copy mode, with a throwaway socket whose rings are sized
// but never mapped, so that closing it releases everything at once (a failed
// bind inside asavie/xdp leaks its ring mappings). A nil error means yes;
// otherwise the bind's error says why not.
func probeZeroCopy(ifindex, queue int) error {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("af_xdp socket: %w", err)
	}
	defer unix.Close(fd)
	const frames, frameSize = 64, 4096
	umem, err := unix.Mmap(-1, 0, frames*frameSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("mmap probe umem: %w", err)
	}
	defer unix.Munmap(umem)
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&umem[0]))), Len: uint64(len(umem)), Size: frameSize}
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_UMEM_REG,
		uintptr(unsafe.Pointer(&reg)), unsafe.Sizeof(reg), 0); e != 0 {
		return fmt.Errorf("register probe umem: %w", e)
	}
	for _, opt := range []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING, unix.XDP_TX_RING} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, opt, frames); err != nil {
			return fmt.Errorf("size probe ring: %w", err)
		}
	}
	sa := unix.SockaddrXDP{Flags: unix.XDP_ZEROCOPY, Ifindex: uint32(ifindex), QueueID: uint32(queue)}
	for wait := time.Millisecond; ; wait *= 2 {
		err := unix.Bind(fd, &sa)
		if err == nil {
			return nil
		}
		// A just-closed socket's binding is freed asynchronously.
		if !errors.Is(err, unix.EBUSY) || wait > 256*time.Millisecond {
			return fmt.Errorf("zero-copy bind: %w", err)
		}
		time.Sleep(wait)
	}
}
