package shm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/collective"
)

// jobID returns the per-host job id: the lowest local rank draws it and
// publishes it under "<Prefix>id/<lowest rank>", the others read it.
func jobID(ctx context.Context, o Options) (string, error) {
	key := o.Prefix + "id/" + strconv.Itoa(o.Local[0])
	if o.Rank == o.Local[0] {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		if err := o.Store.Set(ctx, key, []byte(id)); err != nil {
			return "", fmt.Errorf("publish job id: %w", err)
		}
		return id, nil
	}
	v, err := o.Store.Get(ctx, key)
	if err != nil {
		return "", fmt.Errorf("read job id: %w", err)
	}
	if len(v) != 16 {
		return "", fmt.Errorf("job id %q: %w", v, collective.ErrInvalidArgument)
	}
	return string(v), nil
}

// fileStem is the common start of this job's ring file names: "onet-",
// the prefix with anything but letters and digits as '_', and the job id.
func fileStem(prefix, id string) string {
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, prefix)
	return "onet-" + clean + id
}

func ringPath(dir, stem string, src, dst int) string {
	return filepath.Join(dir, fmt.Sprintf("%s-%d-%d", stem, src, dst))
}

// createRing makes the ring file src→dst (the receiver does this): it
// writes a temporary file, sizes and maps it, writes the header and then
// renames it into place, so the sender never sees a half-made ring.
func createRing(path string, ringBytes int) (*ring, error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := headerBytes + ringBytes
	if err := f.Truncate(int64(size)); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("mmap %s: %w", tmp, err)
	}
	r := mapRing(mem, path)
	r.initHeader()
	if err := os.Rename(tmp, path); err != nil {
		unix.Munmap(mem)
		os.Remove(tmp)
		return nil, err
	}
	return r, nil
}

// openRing maps a ring another rank created, marks it attached and
// unlinks its file (the receiver unlinks too; whoever is second gets
// ENOENT, which is fine).
func openRing(path string, ringBytes int) (*ring, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := headerBytes + ringBytes
	if fi, err := f.Stat(); err != nil || fi.Size() != int64(size) {
		return nil, fmt.Errorf("ring file %s: size %v, want %d (ring bytes differ between ranks?): %w",
			path, sizeOf(fi), size, collective.ErrInvalidArgument)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	r := mapRing(mem, path)
	if err := r.check(); err != nil {
		unix.Munmap(mem)
		return nil, fmt.Errorf("ring file %s: %w", path, err)
	}
	atomic.StoreUint64(r.u64(offProdPID), uint64(os.Getpid()))
	atomic.StoreUint64(r.u64(offProdAttach), 1)
	_ = os.Remove(path)
	return r, nil
}

func sizeOf(fi os.FileInfo) any {
	if fi == nil {
		return "unknown"
	}
	return fi.Size()
}

// connect builds every ring of this rank: in[src] for each local src
// (created here) and out[dst] for each local dst (created there). It
// returns once every sender attached to this rank's rings, with all of
// this rank's files unlinked; on error nothing stays mapped or on disk.
func connect(ctx context.Context, o Options) (in, out []*ring, err error) {
	id, err := jobID(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	stem := fileStem(o.Prefix, id)
	in, out = make([]*ring, o.Size), make([]*ring, o.Size)
	var created []string
	defer func() {
		for _, p := range created {
			_ = os.Remove(p)
		}
		if err != nil {
			unmapAll(in, out, o.Rank)
		}
	}()
	for _, src := range o.Local {
		p := ringPath(o.Dir, stem, src, o.Rank)
		if in[src], err = createRing(p, o.RingBytes); err != nil {
			return nil, nil, fmt.Errorf("create ring from rank %d: %w", src, err)
		}
		created = append(created, p)
		if err = o.Store.Set(ctx, fmt.Sprintf("%sring/%s/%d/%d", o.Prefix, id, src, o.Rank), []byte{1}); err != nil {
			return nil, nil, fmt.Errorf("publish ring from rank %d: %w", src, err)
		}
	}
	for _, dst := range o.Local {
		if dst == o.Rank {
			out[dst] = in[dst]
			atomic.StoreUint64(out[dst].u64(offProdPID), uint64(os.Getpid()))
			atomic.StoreUint64(out[dst].u64(offProdAttach), 1)
			continue
		}
		if _, err = o.Store.Get(ctx, fmt.Sprintf("%sring/%s/%d/%d", o.Prefix, id, o.Rank, dst)); err != nil {
			return nil, nil, fmt.Errorf("wait for rank %d's ring: %w", dst, err)
		}
		if out[dst], err = openRing(ringPath(o.Dir, stem, o.Rank, dst), o.RingBytes); err != nil {
			return nil, nil, fmt.Errorf("open ring to rank %d: %w", dst, err)
		}
	}
	// Wait for every sender to attach to this rank's rings.
	for _, src := range o.Local {
		for d := 50 * time.Microsecond; atomic.LoadUint64(in[src].u64(offProdAttach)) == 0; d = min(2*d, 10*time.Millisecond) {
			select {
			case <-ctx.Done():
				return nil, nil, fmt.Errorf("rank %d never attached: %w: %w", src, collective.ErrTimeout, ctx.Err())
			case <-time.After(d):
			}
		}
	}
	return in, out, nil
}

// unmapAll unmaps every ring (self's ring once).
func unmapAll(in, out []*ring, self int) {
	var errs []error
	for r, rg := range in {
		if rg != nil {
			errs = append(errs, unix.Munmap(rg.mem))
			in[r] = nil
		}
	}
	for r, rg := range out {
		if rg != nil && r != self {
			errs = append(errs, unix.Munmap(rg.mem))
		}
		out[r] = nil
	}
	_ = errors.Join(errs...)
}
